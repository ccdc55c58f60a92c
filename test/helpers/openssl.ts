import { execFileSync } from "node:child_process";

/** Runs openssl and returns stdout+stderr; throws with the output on a non-zero exit. */
export function openssl(args: string[], input?: string): string {
  try {
    return execFileSync("openssl", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`openssl ${args.join(" ")} failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`);
  }
}
