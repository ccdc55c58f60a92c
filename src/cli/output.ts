// CLI conventions: results on stdout (JSON with --json), progress and errors on stderr, and exit
// codes a script can branch on.
import { CustodianError } from "../custodian/errors.ts";
import { ConfigError } from "../config/errors.ts";
import { KeystoreError } from "../custodian/keystore.ts";
import { PassphraseError } from "../custodian/passphrase.ts";

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, REFUSED: 3, UNREACHABLE: 4 } as const;

export class UsageError extends Error {}

export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError || e instanceof ConfigError || e instanceof PassphraseError) return EXIT.USAGE;
  if (e instanceof KeystoreError) return EXIT.FAILED;
  if (e instanceof CustodianError) {
    if (e.code === "COORDINATOR_UNREACHABLE") return EXIT.UNREACHABLE;
    if (["CEREMONY_FAILED", "CEREMONY_ABORTED", "ANNOUNCEMENT_MISMATCH", "REFUSED"].includes(e.code))
      return EXIT.REFUSED;
  }
  return EXIT.FAILED;
}

/** Runs a command body, printing a one-line error and exiting with a meaningful code on failure. */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const err = e as Error & { code?: string; culprits?: string[] };
    const code = err.code ? ` [${err.code}]` : "";
    const who = err.culprits && err.culprits.length > 0 ? ` (culprit: ${err.culprits.join(", ")})` : "";
    process.stderr.write(`tca: error${code}: ${err.message}${who}\n`);
    process.exitCode = exitCodeFor(e);
  }
}

export function printResult(json: boolean, data: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}
