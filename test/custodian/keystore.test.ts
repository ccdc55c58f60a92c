import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  KeystoreError,
  identitySecrets,
  readKeystore,
  writeKeystore,
  type KeystoreContents,
} from "../../src/custodian/keystore.ts";
import { PassphraseError, resolvePassphrase, type PromptInput } from "../../src/custodian/passphrase.ts";
import { SecretBytes } from "../../src/custodian/secret.ts";

const root = mkdtempSync(join(tmpdir(), "tca-keystore-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
const fresh = (name = "keystore.json") => join(root, `case-${++counter}`, name);

const FAST = { scryptN: 2 ** 14 };
const PASS = "correct horse battery staple";

// Recognisable secrets so a leak is easy to spot in any encoding.
const signing = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const hpke = Uint8Array.from({ length: 32 }, (_, i) => (i * 13 + 101) & 0xff);
const shareSecret = Uint8Array.from({ length: 32 }, (_, i) => (255 - i * 5) & 0xff);
const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

const contents: KeystoreContents = {
  identity: { name: "alice", signingSecret: b64u(signing), hpkeSecret: b64u(hpke) },
  share: { identifier: "ab".repeat(32), signingShare: b64u(shareSecret), threshold: 2 },
};

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    if (e instanceof KeystoreError || e instanceof PassphraseError) return e.code;
    throw e;
  }
}

type FileJson = {
  format: string;
  version: number;
  kdf: { name: string; N: number; r: number; p: number; salt: string };
  cipher: { name: string; iv: string };
  check: string;
  ciphertext: string;
};
const load = (path: string) => JSON.parse(readFileSync(path, "utf8")) as FileJson;
const save = (path: string, j: unknown) => writeFileSync(path, JSON.stringify(j));
const flipB64u = (s: string, byte: number) => {
  const b = Buffer.from(s, "base64url");
  b[byte]! ^= 0x01;
  return b.toString("base64url");
};

describe("keystore", () => {
  it("round-trips at the default cost (N = 2^17), creating a 0700 dir and a 0600 file", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents);
    const j = load(path);
    expect(j).toMatchObject({
      format: "tca-keystore",
      version: 1,
      kdf: { name: "scrypt", N: 131072, r: 8, p: 1 },
      cipher: { name: "aes-256-gcm" },
    });
    expect(Buffer.from(j.kdf.salt, "base64url")).toHaveLength(32);
    expect(Buffer.from(j.cipher.iv, "base64url")).toHaveLength(12);
    expect(Buffer.from(j.check, "base64url")).toHaveLength(32);
    expect(await readKeystore(path, PASS)).toEqual(contents);
    if (process.platform !== "win32") {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(path, "..")).mode & 0o777).toBe(0o700);
    }
    // No temp file left behind.
    expect(readdirSync(join(path, ".."))).toEqual(["keystore.json"]);
  });

  it("round-trips at N = 2^14 and uses a fresh salt and IV each write", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const a = load(path);
    expect(a.kdf.N).toBe(2 ** 14);
    await writeKeystore(path, PASS, contents, FAST);
    const b = load(path);
    expect(b.kdf.salt).not.toBe(a.kdf.salt);
    expect(b.cipher.iv).not.toBe(a.cipher.iv);
    expect(b.ciphertext).not.toBe(a.ciphertext);
    expect(await readKeystore(path, PASS)).toEqual(contents);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("validates extra fields with a caller-supplied schema", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, { ...contents, log: { lastCrlNumber: 4 } }, FAST);
    const schema = z.object({
      identity: z.object({ name: z.string(), signingSecret: z.string(), hpkeSecret: z.string() }),
      share: z.object({ identifier: z.string(), signingShare: z.string(), threshold: z.number() }),
      log: z.object({ lastCrlNumber: z.number() }),
    });
    const got = await readKeystore(path, PASS, schema);
    expect(got.log.lastCrlNumber).toBe(4);
    expect(got.share.threshold).toBe(2);
    expect(await codeOf(readKeystore(path, PASS, schema.extend({ missing: z.string() })))).toBe(
      "KEYSTORE_CORRUPT",
    );
  });

  it("wrong passphrase → KEYSTORE_WRONG_PASSPHRASE", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const err = await readKeystore(path, "not the passphrase").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeystoreError);
    expect((err as KeystoreError).code).toBe("KEYSTORE_WRONG_PASSPHRASE");
    expect((err as KeystoreError).message).toContain(path);
  });

  it("missing file → KEYSTORE_NOT_FOUND", async () => {
    expect(await codeOf(readKeystore(fresh(), PASS))).toBe("KEYSTORE_NOT_FOUND");
  });

  it("truncated, non-JSON or malformed file → KEYSTORE_CORRUPT", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, Math.floor(full.length / 2)));
    expect(await codeOf(readKeystore(path, PASS))).toBe("KEYSTORE_CORRUPT");
    writeFileSync(path, "");
    expect(await codeOf(readKeystore(path, PASS))).toBe("KEYSTORE_CORRUPT");

    writeFileSync(path, full);
    const j = load(path);
    const variants: unknown[] = [
      { ...j, ciphertext: undefined },
      { ...j, check: j.check.slice(0, 20) },
      { ...j, cipher: { ...j.cipher, iv: b64u(new Uint8Array(16)) } },
      { ...j, kdf: { ...j.kdf, salt: "not*base64url" } },
      { ...j, ciphertext: b64u(new Uint8Array(8)) },
      { ...j, extra: 1 },
      { ...j, format: "something-else" },
      [j],
      null,
    ];
    for (const v of variants) {
      save(path, v);
      expect(await codeOf(readKeystore(path, PASS))).toBe("KEYSTORE_CORRUPT");
    }
  });

  it("one flipped byte in the ciphertext → KEYSTORE_TAMPERED", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const j = load(path);
    const n = Buffer.from(j.ciphertext, "base64url").length;
    for (const byte of [0, Math.floor(n / 2), n - 1 /* in the GCM tag */]) {
      save(path, { ...j, ciphertext: flipB64u(j.ciphertext, byte) });
      expect(await codeOf(readKeystore(path, PASS))).toBe("KEYSTORE_TAMPERED");
    }
  });

  it("an altered header (iv, salt, check) is refused: the check value covers the whole header", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const j = load(path);
    // Without the passphrase nobody can recompute `check`, so a header edit looks like a
    // wrong passphrase; the message says so.
    for (const v of [
      { ...j, cipher: { ...j.cipher, iv: flipB64u(j.cipher.iv, 0) } },
      { ...j, kdf: { ...j.kdf, salt: flipB64u(j.kdf.salt, 5) } },
      { ...j, check: flipB64u(j.check, 31) },
      { ...j, kdf: { ...j.kdf, N: 2 ** 15 } },
    ]) {
      save(path, v);
      const err = await readKeystore(path, PASS).catch((e: unknown) => e);
      expect((err as KeystoreError).code).toBe("KEYSTORE_WRONG_PASSPHRASE");
      expect((err as KeystoreError).message).toMatch(/header/);
    }
  });

  it("N below 2^14, other r/p, unknown kdf/cipher or version → KEYSTORE_UNSUPPORTED", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const j = load(path);
    for (const v of [
      { ...j, kdf: { ...j.kdf, N: 2 ** 13 } },
      { ...j, kdf: { ...j.kdf, N: 2 } },
      { ...j, kdf: { ...j.kdf, N: 3 * 2 ** 14 } },
      { ...j, kdf: { ...j.kdf, N: 2 ** 30 } },
      { ...j, kdf: { ...j.kdf, r: 1 } },
      { ...j, kdf: { ...j.kdf, p: 2 } },
      { ...j, kdf: { ...j.kdf, name: "pbkdf2" } },
      { ...j, cipher: { ...j.cipher, name: "aes-128-gcm" } },
      { ...j, version: 2 },
      { format: "tca-keystore", version: 2, whatever: true },
    ]) {
      save(path, v);
      expect(await codeOf(readKeystore(path, PASS))).toBe("KEYSTORE_UNSUPPORTED");
    }
    await expect(writeKeystore(fresh(), PASS, contents, { scryptN: 2 ** 10 })).rejects.toMatchObject({
      code: "KEYSTORE_UNSUPPORTED",
    });
  });

  it("the file on disk contains no secret in raw, base64url, base64 or hex form", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const disk = readFileSync(path);
    const text = disk.toString("latin1");
    for (const secret of [signing, hpke, shareSecret]) {
      const buf = Buffer.from(secret);
      expect(disk.includes(buf)).toBe(false);
      for (const form of [buf.toString("base64url"), buf.toString("base64"), buf.toString("hex")]) {
        expect(text.includes(form)).toBe(false);
        // Also a distinctive prefix, in case of partial leaks.
        expect(text.includes(form.slice(0, 16))).toBe(false);
      }
    }
    expect(text.includes(PASS)).toBe(false);
    expect(text.includes("alice")).toBe(false);
  });

  it("inspecting the read contents does not print secrets", async () => {
    const path = fresh();
    await writeKeystore(path, PASS, contents, FAST);
    const got = await readKeystore(path, PASS);
    const shown = inspect(got, { depth: 10 });
    expect(shown).toContain("alice");
    expect(shown).not.toContain(b64u(signing));
    expect(shown).not.toContain(b64u(hpke));
    expect(shown).not.toContain(b64u(shareSecret));
    const s = identitySecrets(got);
    expect(s.signingSecret.expose()).toEqual(signing);
    expect(s.hpkeSecret.expose()).toEqual(hpke);
  });
});

describe("SecretBytes", () => {
  it("prints <redacted> via util.inspect, JSON.stringify, String and templates", () => {
    const s = new SecretBytes(signing);
    expect(inspect(s)).toBe("<redacted>");
    expect(inspect({ key: s }, { depth: 5 })).toContain("<redacted>");
    expect(inspect({ key: s })).not.toContain(String(signing[1]));
    expect(JSON.stringify(s)).toBe('"<redacted>"');
    expect(JSON.stringify({ key: s })).toBe('{"key":"<redacted>"}');
    expect(String(s)).toBe("<redacted>");
    expect(`${s}`).toBe("<redacted>");
    expect(s.expose()).toEqual(signing);
    expect(s.length).toBe(32);
  });

  it("copies its input and can be wiped", () => {
    const input = Uint8Array.from(signing);
    const s = new SecretBytes(input);
    input.fill(0);
    expect(s.expose()).toEqual(signing);
    s.wipe();
    expect(s.expose().every((b) => b === 0)).toBe(true);
  });
});

describe("resolvePassphrase", () => {
  // A stand-in for stdin that is definitely not a TTY, whatever runs the tests.
  const pipe: PromptInput = Object.assign(new PassThrough(), { isTTY: false });

  it("reads the first line of a passphrase file, stripping the newline", async () => {
    const file = fresh("pass.txt");
    const dir = join(file, "..");
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, "file passphrase 1\nsecond line\n");
    expect(
      await resolvePassphrase({
        passphraseFile: file,
        env: { TCA_PASSPHRASE: "env passphrase" },
        input: pipe,
      }),
    ).toBe("file passphrase 1");
    writeFileSync(file, "windows passphrase\r\n");
    expect(await resolvePassphrase({ passphraseFile: file, env: {}, input: pipe })).toBe(
      "windows passphrase",
    );
    writeFileSync(file, "no newline at all");
    expect(await resolvePassphrase({ passphraseFile: file, env: {}, input: pipe })).toBe("no newline at all");
    writeFileSync(file, "\nsecond line only");
    expect(await codeOf(resolvePassphrase({ passphraseFile: file, env: {}, input: pipe }))).toBe(
      "PASSPHRASE_MISSING",
    );
    writeFileSync(file, "short\n");
    expect(await codeOf(resolvePassphrase({ passphraseFile: file, env: {}, input: pipe }))).toBe(
      "PASSPHRASE_WEAK",
    );
    expect(await codeOf(resolvePassphrase({ passphraseFile: join(dir, "nope"), env: {}, input: pipe }))).toBe(
      "PASSPHRASE_FILE_UNREADABLE",
    );
  });

  it("falls back to TCA_PASSPHRASE", async () => {
    expect(await resolvePassphrase({ env: { TCA_PASSPHRASE: "env passphrase" }, input: pipe })).toBe(
      "env passphrase",
    );
    expect(await codeOf(resolvePassphrase({ env: { TCA_PASSPHRASE: "1234567" }, input: pipe }))).toBe(
      "PASSPHRASE_WEAK",
    );
  });

  it("without file, env or TTY → PASSPHRASE_MISSING, saying how to supply one", async () => {
    const err = await resolvePassphrase({ env: {}, input: pipe }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PassphraseError);
    expect((err as PassphraseError).code).toBe("PASSPHRASE_MISSING");
    expect((err as PassphraseError).message).toMatch(/--passphrase-file/);
    expect((err as PassphraseError).message).toMatch(/TCA_PASSPHRASE/);
    // An empty env var counts as unset.
    expect(await codeOf(resolvePassphrase({ env: { TCA_PASSPHRASE: "" }, input: pipe }))).toBe(
      "PASSPHRASE_MISSING",
    );
  });

  it("prompts without echo on a TTY (with confirmation)", async () => {
    const input = new PassThrough() as PassThrough & PromptInput;
    const rawModes: boolean[] = [];
    Object.assign(input, { isTTY: true, setRawMode: (m: boolean) => rawModes.push(m) });
    let written = "";
    const output = new PassThrough();
    output.on("data", (d: Buffer) => (written += d.toString()));

    const p = resolvePassphrase({ env: {}, input, output, confirm: true });
    input.write("typed passphrasX\u007fe\r");
    await new Promise((r) => setTimeout(r, 10));
    input.write("typed passphrase\r");
    expect(await p).toBe("typed passphrase");
    expect(written).not.toContain("typed");
    expect(rawModes).toEqual([true, false, true, false]);

    const q = resolvePassphrase({ env: {}, input, output, confirm: true });
    input.write("typed passphrase\r");
    await new Promise((r) => setTimeout(r, 10));
    input.write("different one\r");
    expect(await codeOf(q)).toBe("PASSPHRASE_MISMATCH");

    expect(await codeOf(resolvePassphrase({ env: {}, input, output, prompt: false }))).toBe(
      "PASSPHRASE_MISSING",
    );
  });
});
