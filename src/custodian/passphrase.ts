/**
 * Where a custodian's keystore passphrase comes from, in order:
 *   1. `--passphrase-file` (first line; the trailing newline is stripped),
 *   2. the TCA_PASSPHRASE environment variable,
 *   3. a hidden prompt on stderr, only when stdin is a TTY.
 * The passphrase is never logged or echoed.
 */
import { readFile } from "node:fs/promises";

export type PassphraseErrorCode =
  | "PASSPHRASE_MISSING"
  | "PASSPHRASE_WEAK"
  | "PASSPHRASE_MISMATCH"
  | "PASSPHRASE_FILE_UNREADABLE"
  | "PASSPHRASE_CANCELLED";

export class PassphraseError extends Error {
  override readonly name = "PassphraseError";
  constructor(
    readonly code: PassphraseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const PASSPHRASE_ENV = "TCA_PASSPHRASE";
export const MIN_PASSPHRASE_LENGTH = 8;

/** The bits of a TTY input stream the prompt needs (process.stdin fits). */
export interface PromptInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface ResolvePassphraseOptions {
  passphraseFile?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Allow an interactive prompt when stdin is a TTY (default true). */
  prompt?: boolean;
  /** When prompting, ask twice and require both to match (use when creating a keystore). */
  confirm?: boolean;
  /** For tests: stands in for process.stdin / process.stderr. */
  input?: PromptInput;
  output?: NodeJS.WritableStream;
}

export async function resolvePassphrase(options: ResolvePassphraseOptions = {}): Promise<string> {
  const env = options.env ?? process.env;

  if (options.passphraseFile !== undefined) {
    let text: string;
    try {
      text = await readFile(options.passphraseFile, "utf8");
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : "error");
      throw new PassphraseError(
        "PASSPHRASE_FILE_UNREADABLE",
        `Cannot read passphrase file ${options.passphraseFile} (${reason}).`,
        { cause: e },
      );
    }
    const first = text.split("\n", 1)[0] ?? "";
    const passphrase = first.endsWith("\r") ? first.slice(0, -1) : first;
    if (passphrase.length === 0) {
      throw new PassphraseError(
        "PASSPHRASE_MISSING",
        `Passphrase file ${options.passphraseFile} is empty; put the passphrase on its first line.`,
      );
    }
    return checkStrength(passphrase, `the passphrase in ${options.passphraseFile}`);
  }

  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== "") {
    return checkStrength(fromEnv, `the ${PASSPHRASE_ENV} environment variable`);
  }

  const input = options.input ?? (process.stdin as PromptInput);
  const output = options.output ?? process.stderr;
  if (options.prompt !== false && input.isTTY === true && typeof input.setRawMode === "function") {
    const first = checkStrength(await promptHidden(input, output, "Keystore passphrase: "), "the passphrase");
    if (options.confirm) {
      const second = await promptHidden(input, output, "Repeat the passphrase: ");
      if (second !== first) {
        throw new PassphraseError(
          "PASSPHRASE_MISMATCH",
          "The two passphrases you typed differ; nothing was changed.",
        );
      }
    }
    return first;
  }

  throw new PassphraseError(
    "PASSPHRASE_MISSING",
    `No keystore passphrase: pass --passphrase-file <file>, set ${PASSPHRASE_ENV}, or run in a terminal to be prompted.`,
  );
}

function checkStrength(passphrase: string, source: string): string {
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new PassphraseError(
      "PASSPHRASE_WEAK",
      `${source[0]?.toUpperCase() ?? ""}${source.slice(1)} is shorter than ${MIN_PASSPHRASE_LENGTH} characters.`,
    );
  }
  return passphrase;
}

/** Reads one line from a TTY in raw mode without echoing it. */
function promptHidden(input: PromptInput, output: NodeJS.WritableStream, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = "";
    output.write(question);
    input.setRawMode?.(true);
    input.setEncoding("utf8");
    input.resume();

    const finish = (err: PassphraseError | null) => {
      input.removeListener("data", onData);
      input.setRawMode?.(false);
      input.pause();
      output.write("\n");
      if (err) reject(err);
      else resolve(typed);
    };

    const onData = (chunk: string | Buffer) => {
      for (const ch of String(chunk)) {
        switch (ch) {
          case "\r":
          case "\n":
            finish(null);
            return;
          case "\u0003": // Ctrl-C
            typed = "";
            finish(new PassphraseError("PASSPHRASE_CANCELLED", "Passphrase entry was cancelled."));
            return;
          case "\u0004": // Ctrl-D
            if (typed.length === 0) {
              finish(new PassphraseError("PASSPHRASE_CANCELLED", "Passphrase entry was cancelled."));
              return;
            }
            finish(null);
            return;
          case "\u007f": // Backspace / Delete
          case "\b":
            typed = [...typed].slice(0, -1).join("");
            break;
          default:
            typed += ch;
        }
      }
    };
    input.on("data", onData);
  });
}
