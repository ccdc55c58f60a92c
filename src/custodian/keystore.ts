/**
 * Encrypted keystore file for a custodian node (identity keys; later its FROST key share).
 *
 * File format (JSON):
 *   { "format": "tca-keystore", "version": 1,
 *     "kdf": { "name": "scrypt", "N": 131072, "r": 8, "p": 1, "salt": b64url(32) },
 *     "cipher": { "name": "aes-256-gcm", "iv": b64url(12) },
 *     "check": b64url(32), "ciphertext": b64url(ciphertext ‖ 16-byte GCM tag) }
 *
 * scrypt(passphrase, salt) gives 64 bytes: the first 32 are the AES-256-GCM key, the last 32 the
 * key of `check` = HMAC-SHA256(macKey, canonical header bytes). The canonical header (format,
 * version, kdf, cipher, serialised with a fixed key order) is also the GCM AAD. So:
 *   - check mismatch   → wrong passphrase (or a header edited by someone without the passphrase);
 *   - check ok, GCM fails → the ciphertext was modified (KEYSTORE_TAMPERED).
 * N below 2^14 (or r ≠ 8, p ≠ 1) is refused on read so a file cannot be downgraded to a cheap KDF.
 *
 * An optional top-level "journalAnchor" holds the head of the custodian's journal (docs/journal.md):
 * in clear, signed by the identity key, rewritten atomically (temp file, fsync, rename, fsync of the
 * directory) before each approval or share leaves, without the passphrase. Keystores without it
 * (written before anchoring) read as before; rewriting the encrypted part keeps it.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from "node:crypto";
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { inspect } from "node:util";
import { z } from "zod";
import { SecretBytes } from "./secret.ts";

export type KeystoreErrorCode =
  | "KEYSTORE_NOT_FOUND"
  | "KEYSTORE_IO"
  | "KEYSTORE_CORRUPT"
  | "KEYSTORE_WRONG_PASSPHRASE"
  | "KEYSTORE_TAMPERED"
  | "KEYSTORE_UNSUPPORTED";

export class KeystoreError extends Error {
  override readonly name = "KeystoreError";
  constructor(
    readonly code: KeystoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Contents

export interface KeystoreIdentity {
  name: string;
  /** base64url of the identity signing secret key */
  signingSecret: string;
  /** base64url of the long-term HPKE secret key */
  hpkeSecret: string;
}

/**
 * What the keystore protects. Must be JSON-serialisable. `share` and any extra top-level field
 * are opaque to the keystore; pass a schema to `readKeystore` to type and validate them.
 */
export interface KeystoreContents {
  identity: KeystoreIdentity;
  share?: unknown;
  [field: string]: unknown;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export const keystoreContentsSchema = z.looseObject({
  identity: z.looseObject({
    name: z.string().min(1),
    signingSecret: z.string().min(1).regex(B64URL, "must be base64url"),
    hpkeSecret: z.string().min(1).regex(B64URL, "must be base64url"),
  }),
  share: z.unknown().optional(),
});

/** Convenience: the identity secrets as redacting `SecretBytes`. */
export function identitySecrets(contents: KeystoreContents): {
  signingSecret: SecretBytes;
  hpkeSecret: SecretBytes;
} {
  return {
    signingSecret: SecretBytes.fromBase64url(contents.identity.signingSecret),
    hpkeSecret: SecretBytes.fromBase64url(contents.identity.hpkeSecret),
  };
}

// ---------------------------------------------------------------------------------------------
// Parameters

export const KEYSTORE_FORMAT = "tca-keystore";
export const KEYSTORE_VERSION = 1;
export const DEFAULT_SCRYPT_N = 2 ** 17;
export const MIN_SCRYPT_N = 2 ** 14;
export const MAX_SCRYPT_N = 2 ** 20;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_LEN = 32;
const IV_LEN = 12;
const TAG_LEN = 16;
const CHECK_LEN = 32;

export interface WriteKeystoreOptions {
  /** scrypt cost; a power of two in [2^14, 2^20]. Default 2^17. Stored in the header. */
  scryptN?: number;
  /** The journal anchor to store in clear; default: the one the file already holds, if any. */
  journalAnchor?: Record<string, unknown>;
  /**
   * A lock file the journal holds while it writes its anchor (`<journal>.lock`): the anchor kept is
   * read, and the file replaced, while holding it, so that a save from another process (a lifecycle
   * ceremony storing a new share) can never drop or roll back an anchor a running agent writes
   * meanwhile (docs/journal.md).
   */
  anchorLock?: string;
}

interface Header {
  format: typeof KEYSTORE_FORMAT;
  version: typeof KEYSTORE_VERSION;
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: { name: "aes-256-gcm"; iv: string };
}

const b64urlOf = (len: number) =>
  z
    .string()
    .regex(B64URL, "must be base64url")
    .refine((s) => Buffer.from(s, "base64url").length === len && s.length === Math.ceil((len * 4) / 3), {
      message: `must encode exactly ${len} bytes`,
    });

const fileSchema = z.strictObject({
  format: z.literal(KEYSTORE_FORMAT),
  version: z.number().int(),
  kdf: z.strictObject({
    name: z.string(),
    N: z.number().int().positive(),
    r: z.number().int().positive(),
    p: z.number().int().positive(),
    salt: b64urlOf(SALT_LEN),
  }),
  cipher: z.strictObject({
    name: z.string(),
    iv: b64urlOf(IV_LEN),
  }),
  check: b64urlOf(CHECK_LEN),
  ciphertext: z
    .string()
    .regex(B64URL, "must be base64url")
    .refine((s) => Buffer.from(s, "base64url").length >= TAG_LEN, { message: "is too short" }),
  /** Opaque here; the journal checks its signature (journal.ts). */
  journalAnchor: z.record(z.string(), z.unknown()).optional(),
});

/** Fixed key order, so the bytes do not depend on how the file happened to be serialised. */
function canonicalHeader(h: Header): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: h.format,
      version: h.version,
      kdf: { name: h.kdf.name, N: h.kdf.N, r: h.kdf.r, p: h.kdf.p, salt: h.kdf.salt },
      cipher: { name: h.cipher.name, iv: h.cipher.iv },
    }),
    "utf8",
  );
}

function isValidN(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_SCRYPT_N && n <= MAX_SCRYPT_N && (n & (n - 1)) === 0;
}

function deriveKeys(passphrase: string, salt: Buffer, N: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Node refuses when 128·N·r exceeds maxmem; leave generous headroom.
    const maxmem = 256 * N * SCRYPT_R + 32 * 1024 * 1024;
    scrypt(passphrase.normalize("NFC"), salt, 64, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function checkValue(macKey: Buffer, header: Buffer): Buffer {
  return createHmac("sha256", macKey).update(header).digest();
}

// ---------------------------------------------------------------------------------------------
// Write

export async function writeKeystore<T extends KeystoreContents>(
  path: string,
  passphrase: string,
  secrets: T,
  options: WriteKeystoreOptions = {},
): Promise<void> {
  const N = options.scryptN ?? DEFAULT_SCRYPT_N;
  if (!isValidN(N)) {
    throw new KeystoreError(
      "KEYSTORE_UNSUPPORTED",
      `Cannot write keystore ${path}: scrypt N must be a power of two between 2^14 and 2^20, got ${N}.`,
    );
  }
  const checked = keystoreContentsSchema.safeParse(secrets);
  if (!checked.success) {
    throw new TypeError(
      `Cannot write keystore ${path}: contents are invalid (${z.prettifyError(checked.error)}).`,
    );
  }

  const plaintext = Buffer.from(JSON.stringify(secrets), "utf8");
  const salt = randomBytes(SALT_LEN);
  const iv = randomBytes(IV_LEN);
  const header: Header = {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    kdf: { name: "scrypt", N, r: SCRYPT_R, p: SCRYPT_P, salt: salt.toString("base64url") },
    cipher: { name: "aes-256-gcm", iv: iv.toString("base64url") },
  };
  const aad = canonicalHeader(header);

  const keys = await deriveKeys(passphrase, salt, N);
  let sealed: { check: string; ciphertext: string };
  try {
    const encKey = keys.subarray(0, 32);
    const macKey = keys.subarray(32, 64);
    const cipher = createCipheriv("aes-256-gcm", encKey, iv, { authTagLength: TAG_LEN });
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    sealed = { check: checkValue(macKey, aad).toString("base64url"), ciphertext: ct.toString("base64url") };
  } finally {
    keys.fill(0);
    plaintext.fill(0);
  }

  const commit = async () => {
    // Read as late as possible (after scrypt, under the anchor lock if given), so an anchor written
    // meanwhile is the one kept.
    const journalAnchor = options.journalAnchor ?? existingAnchor(path);
    const body =
      JSON.stringify({ ...header, ...sealed, ...(journalAnchor ? { journalAnchor } : {}) }, null, 2) + "\n";
    await writeFileAtomic(path, body);
  };
  if (options.anchorLock) await withLockFile(options.anchorLock, path, commit);
  else await commit();
}

/**
 * Runs `fn` holding `lock` (created exclusively, removed after), the protocol the journal uses for
 * its appends and anchors; a lock older than 10 s is a dead process's. Gives up after 5 s.
 */
async function withLockFile<T>(lock: string, path: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      closeSync(openSync(lock, "wx", 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST")
        throw new KeystoreError("KEYSTORE_IO", `Cannot write keystore ${path}: ${errMsg(e)}.`, { cause: e });
      const held = statSync(lock, { throwIfNoEntry: false });
      if (!held) continue;
      if (Date.now() - held.mtimeMs > 10_000) unlinkSync(lock);
      if (Date.now() > deadline)
        throw new KeystoreError(
          "KEYSTORE_IO",
          `Cannot write keystore ${path}: ${lock} is held by another process of this custodian.`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* removed as stale by another process */
    }
  }
}

function existingAnchor(path: string): Record<string, unknown> | undefined {
  try {
    return readKeystoreAnchor(path) as Record<string, unknown> | undefined;
  } catch {
    return undefined;
  }
}

/** The journal anchor stored in clear in the keystore file (unchecked), or undefined. No passphrase needed. */
export function readKeystoreAnchor(path: string): unknown {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === "ENOENT" ? "KEYSTORE_NOT_FOUND" : "KEYSTORE_IO";
    throw new KeystoreError(code, `Cannot read keystore file ${path}: ${errMsg(e)}.`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new KeystoreError(
      "KEYSTORE_CORRUPT",
      `Keystore file ${path} is not valid JSON (truncated or damaged).`,
      {
        cause: e,
      },
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new KeystoreError("KEYSTORE_CORRUPT", `Keystore file ${path} is not a tca keystore.`);
  return (json as Record<string, unknown>).journalAnchor;
}

/** mtime, size and inode of the keystore file: changes whenever the anchor is rewritten. */
export function keystoreFileVersion(path: string): string {
  const st = statSync(path, { throwIfNoEntry: false, bigint: true });
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : "absent";
}

/**
 * Changes whenever the encrypted part is rewritten (each write draws a new salt and IV), and not
 * when only the journal anchor is: how a running agent notices that another process stored a new
 * key share (docs/key-lifecycle.md) without decrypting the file on every round.
 */
export function keystoreSealedVersion(path: string): string {
  try {
    const j = JSON.parse(readFileSync(path, "utf8")) as {
      kdf?: { salt?: unknown };
      cipher?: { iv?: unknown };
    };
    return `${String(j.kdf?.salt)}:${String(j.cipher?.iv)}`;
  } catch {
    return "unreadable";
  }
}

/**
 * Replaces the journal anchor in the keystore file, leaving the encrypted part byte for byte as it
 * is: a temp file written and fsynced, renamed over the keystore, and the directory fsynced, so a
 * crash leaves the old file or the new one, never a mix.
 */
export function writeKeystoreAnchor(path: string, anchor: Record<string, unknown>): void {
  let current: Record<string, unknown>;
  try {
    current = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new KeystoreError("KEYSTORE_IO", `Cannot anchor the journal in keystore ${path}: ${errMsg(e)}.`, {
      cause: e,
    });
  }
  if (!fileSchema.safeParse(current).success)
    throw new KeystoreError("KEYSTORE_CORRUPT", `Keystore file ${path} is damaged or not a tca keystore.`);
  const body = JSON.stringify({ ...current, journalAnchor: anchor }, null, 2) + "\n";
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, "wx", 0o600);
    try {
      const buf = Buffer.from(body, "utf8");
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw new KeystoreError("KEYSTORE_IO", `Cannot anchor the journal in keystore ${path}: ${errMsg(e)}.`, {
      cause: e,
    });
  }
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported on every platform */
  }
}

async function writeFileAtomic(path: string, body: string): Promise<void> {
  const dir = dirname(path);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new KeystoreError("KEYSTORE_IO", `Cannot create the directory of keystore ${path}: ${errMsg(e)}.`, {
      cause: e,
    });
  }
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(body, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new KeystoreError("KEYSTORE_IO", `Cannot write keystore ${path}: ${errMsg(e)}.`, { cause: e });
  }
  // Make the rename durable (best effort; not supported on every platform).
  try {
    const dh = await open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* ignore */
  }
}

// ---------------------------------------------------------------------------------------------
// Read

export async function readKeystore(path: string, passphrase: string): Promise<KeystoreContents>;
export async function readKeystore<T extends KeystoreContents>(
  path: string,
  passphrase: string,
  schema: z.ZodType<T>,
): Promise<T>;
export async function readKeystore(
  path: string,
  passphrase: string,
  schema?: z.ZodType<KeystoreContents>,
): Promise<KeystoreContents> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new KeystoreError("KEYSTORE_NOT_FOUND", `Keystore file ${path} does not exist.`, { cause: e });
    }
    throw new KeystoreError("KEYSTORE_IO", `Cannot read keystore file ${path}: ${errMsg(e)}.`, { cause: e });
  }

  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new KeystoreError(
      "KEYSTORE_CORRUPT",
      `Keystore file ${path} is not valid JSON (truncated or damaged).`,
      {
        cause: e,
      },
    );
  }

  // A future version may have another shape: say "unsupported" rather than "corrupt".
  if (typeof json === "object" && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    if (o.format === KEYSTORE_FORMAT && o.version !== undefined && o.version !== KEYSTORE_VERSION) {
      throw new KeystoreError(
        "KEYSTORE_UNSUPPORTED",
        `Keystore file ${path} has version ${JSON.stringify(o.version)}; this tca reads version ${KEYSTORE_VERSION} only.`,
      );
    }
  }

  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid";
    throw new KeystoreError(
      "KEYSTORE_CORRUPT",
      `Keystore file ${path} is damaged or not a tca keystore (${where}).`,
    );
  }
  const f = parsed.data;
  if (f.kdf.name !== "scrypt" || f.cipher.name !== "aes-256-gcm") {
    throw new KeystoreError(
      "KEYSTORE_UNSUPPORTED",
      `Keystore file ${path} uses kdf "${f.kdf.name}" / cipher "${f.cipher.name}"; only scrypt / aes-256-gcm are supported.`,
    );
  }
  if (!isValidN(f.kdf.N) || f.kdf.r !== SCRYPT_R || f.kdf.p !== SCRYPT_P) {
    throw new KeystoreError(
      "KEYSTORE_UNSUPPORTED",
      `Keystore file ${path} has unsupported scrypt parameters (N=${f.kdf.N}, r=${f.kdf.r}, p=${f.kdf.p}); ` +
        `N must be a power of two in [2^14, 2^20] with r=8, p=1.`,
    );
  }

  const header: Header = {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    kdf: { name: "scrypt", N: f.kdf.N, r: f.kdf.r, p: f.kdf.p, salt: f.kdf.salt },
    cipher: { name: "aes-256-gcm", iv: f.cipher.iv },
  };
  const aad = canonicalHeader(header);
  const salt = Buffer.from(f.kdf.salt, "base64url");
  const iv = Buffer.from(f.cipher.iv, "base64url");
  const check = Buffer.from(f.check, "base64url");
  const blob = Buffer.from(f.ciphertext, "base64url");
  const ct = blob.subarray(0, blob.length - TAG_LEN);
  const tag = blob.subarray(blob.length - TAG_LEN);

  const keys = await deriveKeys(passphrase, salt, f.kdf.N);
  let plaintext: Buffer;
  try {
    const encKey = keys.subarray(0, 32);
    const macKey = keys.subarray(32, 64);
    if (!timingSafeEqual(checkValue(macKey, aad), check)) {
      throw new KeystoreError(
        "KEYSTORE_WRONG_PASSPHRASE",
        `Wrong passphrase for keystore ${path} (or its header was edited).`,
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", encKey, iv, { authTagLength: TAG_LEN });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(ct), decipher.final()]);
    } catch (e) {
      throw new KeystoreError(
        "KEYSTORE_TAMPERED",
        `Keystore ${path} failed its integrity check: the encrypted contents were modified.`,
        { cause: e },
      );
    }
  } finally {
    keys.fill(0);
  }

  let contents: unknown;
  try {
    contents = JSON.parse(plaintext.toString("utf8"));
  } catch {
    throw new KeystoreError("KEYSTORE_CORRUPT", `Keystore ${path} decrypted to something that is not JSON.`);
  } finally {
    plaintext.fill(0);
  }
  const valid = (schema ?? keystoreContentsSchema).safeParse(contents);
  if (!valid.success) {
    throw new KeystoreError(
      "KEYSTORE_CORRUPT",
      `Keystore ${path} decrypted, but its contents are not valid (${valid.error.issues[0]?.message ?? "invalid"}).`,
    );
  }
  return redactOnInspect(valid.data as KeystoreContents);
}

/** console.log / util.inspect of the returned contents shows names, not secrets (JSON is untouched). */
function redactOnInspect<T extends KeystoreContents>(contents: T): T {
  Object.defineProperty(contents, inspect.custom, {
    enumerable: false,
    value: () => {
      const shown: Record<string, unknown> = {
        identity: { name: contents.identity.name, signingSecret: "<redacted>", hpkeSecret: "<redacted>" },
      };
      for (const k of Object.keys(contents)) if (k !== "identity") shown[k] = "<redacted>";
      return shown;
    },
  });
  return contents;
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
