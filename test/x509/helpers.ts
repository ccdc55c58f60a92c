// Test helpers: openssl in a temp dir, a stand-in Ed25519 CA key (tests only: production signs
// with FROST), and a raw TBS writer for crafting malformed certificates the builders refuse.
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bitString,
  boolean,
  ctx,
  integerContent,
  oid,
  seq,
  smallInteger,
  tlv,
  TAG,
} from "../../src/x509/der.ts";
import { encodeExtensions, type Ext } from "../../src/x509/extensions.ts";
import { encodeTime } from "../../src/x509/time.ts";
import { ED25519_ALG_ID } from "../../src/x509/tbs.ts";

export function openssl(args: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync("openssl", args, {
    cwd: opts.cwd,
    input: opts.input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
  });
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), "tca-x509-"));
  file(name: string, content?: string | Uint8Array): string {
    const p = join(this.path, name);
    if (content !== undefined) writeFileSync(p, content);
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface TestCaKey {
  raw: Uint8Array;
  privateKey: KeyObject;
  sign(tbs: Uint8Array): Uint8Array;
}

export function testCaKey(): TestCaKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(12));
  return { raw, privateKey, sign: (tbs) => new Uint8Array(sign(null, tbs, privateKey)) };
}

/** A fixed Ed25519 key (RFC 8032 §7.1 TEST 1 secret) for golden vectors. */
export function fixedCaKey(): TestCaKey {
  const seed = Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex");
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const privateKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const raw = new Uint8Array(
    createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(12),
  );
  return { raw, privateKey, sign: (tbs) => new Uint8Array(sign(null, tbs, privateKey)) };
}

/** Fields of a hand-made TBS; every one can be replaced by raw DER to break a rule. */
export interface RawTbs {
  version?: Uint8Array | null;
  serial?: Uint8Array;
  sigAlg?: Uint8Array;
  issuer: Uint8Array;
  notBefore?: Uint8Array;
  notAfter?: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  uniqueIds?: Uint8Array;
  extensions: Ext[];
}

export function rawTbs(f: RawTbs): Uint8Array {
  return seq(
    ...(f.version === null ? [] : [f.version ?? ctx(0, true, smallInteger(2))]),
    f.serial ?? integerContent(Uint8Array.from([0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
    f.sigAlg ?? ED25519_ALG_ID,
    f.issuer,
    seq(
      f.notBefore ?? encodeTime(new Date("2026-01-01T00:00:00Z")),
      f.notAfter ?? encodeTime(new Date("2027-01-01T00:00:00Z")),
    ),
    f.subject,
    f.spki,
    ...(f.uniqueIds ? [f.uniqueIds] : []),
    ...(f.extensions.length ? [ctx(3, true, encodeExtensions(f.extensions))] : []),
  );
}

export const der = { bitString, boolean, ctx, integerContent, oid, seq, smallInteger, tlv, TAG };
