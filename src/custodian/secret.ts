import { inspect } from "node:util";

const REDACTED = "<redacted>";

/**
 * Raw secret bytes that refuse to print themselves. `String()`, template strings,
 * `JSON.stringify`, `util.inspect` / `console.log` all show "<redacted>"; only
 * `expose()` hands out the bytes, so every use of the secret is greppable.
 */
export class SecretBytes {
  readonly #bytes: Uint8Array;

  /** Takes a copy of `bytes`; wipe your own copy if you no longer need it. */
  constructor(bytes: Uint8Array) {
    this.#bytes = Uint8Array.from(bytes);
  }

  static fromBase64url(text: string): SecretBytes {
    const bytes = Buffer.from(text, "base64url");
    try {
      return new SecretBytes(bytes);
    } finally {
      bytes.fill(0);
    }
  }

  get length(): number {
    return this.#bytes.length;
  }

  /** The secret bytes themselves (not a copy). Do not log, store or send them. */
  expose(): Uint8Array {
    return this.#bytes;
  }

  /** Overwrites the bytes with zeros (best effort: JS gives no stronger guarantee). */
  wipe(): void {
    this.#bytes.fill(0);
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
