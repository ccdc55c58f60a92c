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
    // The coordinator refused the decision for the request's state (e.g. approving a request that
    // is already rejected or issued): refused, as the README's table says.
    if (e.code === "COORDINATOR_ERROR" && (e as { status?: number }).status === 409) return EXIT.REFUSED;
  }
  return EXIT.FAILED;
}

/** The error as the one line the CLI prints: `tca: error: what happened; what to do`. */
export function errorLine(e: unknown): string {
  const err = (e instanceof Error ? e : new Error(String(e))) as Error & { culprits?: string[] };
  const who = err.culprits && err.culprits.length > 0 ? ` (culprit: ${err.culprits.join(", ")})` : "";
  return `tca: error: ${oneLine(err.message)}${who}`;
}

/** Whitespace runs, newlines included, as one space: every message is one line. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

/** Runs a command body, printing a one-line error and exiting with a meaningful code on failure. */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    process.stderr.write(`${errorLine(e)}\n`);
    process.exitCode = exitCodeFor(e);
  }
}

/**
 * While `what` runs, Ctrl-C (SIGINT) prints `stopped` — what was interrupted and how to pick it up
 * again — and exits 130 (128 + SIGINT), instead of dying silently.
 */
export async function interruptible<T>(stopped: () => string, what: () => Promise<T>): Promise<T> {
  const onInt = () => {
    process.stderr.write(`\ntca: ${oneLine(stopped())}\n`);
    process.exit(130);
  };
  process.once("SIGINT", onInt);
  try {
    return await what();
  } finally {
    process.off("SIGINT", onInt);
  }
}

export function printResult(json: boolean, data: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}
