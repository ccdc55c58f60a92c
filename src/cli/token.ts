// Bearer tokens on the command line: `--token-file FILE`, else an environment variable. Never a
// token in argv (it would show in `ps` and shell history). Each problem is a one-line usage error.
import { readFileSync } from "node:fs";
import { UsageError } from "./output.ts";

/**
 * The token in `file` (trimmed), else in `$env`. `what` names the token in the messages
 * ("a requester token", "an admin token").
 */
export function readToken(file: string | undefined, env: string, what: string): string {
  if (file !== undefined) {
    let t: string;
    try {
      t = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new UsageError(`--token-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (!t) throw new UsageError(`--token-file: ${file} is empty; it should hold ${what}`);
    return t;
  }
  const t = process.env[env]?.trim();
  if (!t) throw new UsageError(`${what} is needed: pass --token-file FILE or set $${env}`);
  return t;
}
