// The bottom layer: canonical JSON, strict hex, SHA-256 and node:crypto Ed25519 (RFC 8032).
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as ed from "../../src/common/ed25519.ts";
import { ed25519PublicKey, signEd25519, verifyEd25519 } from "../../src/common/ed25519.ts";
import { canonicalJson } from "../../src/common/canonical-json.ts";
import { bytesToHex, hexToBytes } from "../../src/common/hex.ts";
import { sha256Hex } from "../../src/common/hash.ts";

const h = (s: string) => hexToBytes(s);

describe("Ed25519 through node:crypto", () => {
  it("reproduces RFC 8032 §7.1 test 1 and test 2", () => {
    const t1 = {
      secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      pub: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      msg: "",
      sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    };
    const t2 = {
      secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      pub: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      msg: "72",
      sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    };
    for (const t of [t1, t2]) {
      expect(bytesToHex(ed25519PublicKey(h(t.secret)))).toBe(t.pub);
      expect(bytesToHex(signEd25519(h(t.secret), h(t.msg)))).toBe(t.sig);
      expect(verifyEd25519(h(t.sig), h(t.msg), h(t.pub))).toBe(true);
    }
  });

  it("is byte-identical to noble for random keys and messages, and both verify each other", () => {
    for (let i = 0; i < 20; i++) {
      const sk = randomBytes(32);
      const m = randomBytes(i * 7);
      const pk = ed25519.getPublicKey(sk);
      expect(bytesToHex(ed25519PublicKey(sk))).toBe(bytesToHex(pk));
      const sig = signEd25519(sk, m);
      expect(bytesToHex(sig)).toBe(bytesToHex(ed25519.sign(m, sk)));
      expect(ed25519.verify(sig, m, pk)).toBe(true);
      expect(verifyEd25519(ed25519.sign(m, sk), m, pk)).toBe(true);
    }
  });

  it("returns false, never throws, for wrong or malformed input", () => {
    const sk = randomBytes(32);
    const pk = ed25519PublicKey(sk);
    const m = Buffer.from("message");
    const sig = signEd25519(sk, m);
    const flipped = Uint8Array.from(sig);
    flipped[10]! ^= 1;
    expect(verifyEd25519(flipped, m, pk)).toBe(false);
    expect(verifyEd25519(sig, Buffer.from("messagf"), pk)).toBe(false);
    expect(verifyEd25519(sig, m, ed25519PublicKey(randomBytes(32)))).toBe(false);
    expect(verifyEd25519(sig.subarray(0, 63), m, pk)).toBe(false);
    expect(verifyEd25519(sig, m, pk.subarray(0, 31))).toBe(false);
    expect(verifyEd25519(sig, m, new Uint8Array(32).fill(0xff))).toBe(false); // not a point
    expect(verifyEd25519(new Uint8Array(64), m, pk)).toBe(false);
    expect(verifyEd25519("x" as unknown as Uint8Array, m, pk)).toBe(false);
    expect(() => signEd25519(new Uint8Array(31), m)).toThrow(/32 bytes/);
  });

  it("keeps its key caches private and bounded", () => {
    expect(Object.keys(ed).sort()).toEqual(["ed25519PublicKey", "signEd25519", "verifyEd25519"]);
    expect(inspect(ed, { depth: 5, showHidden: true })).not.toMatch(/KeyObject|Map\(/);
    // More distinct keys than the cache holds: all still sign correctly.
    for (let i = 0; i < 150; i++) {
      const sk = randomBytes(32);
      expect(
        verifyEd25519(signEd25519(sk, new Uint8Array([i])), new Uint8Array([i]), ed25519PublicKey(sk)),
      ).toBe(true);
    }
  });
});

describe("canonical JSON, hex, SHA-256", () => {
  it("sorts keys at every depth and drops undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: "x" } })).toBe(
      '{"a":{"c":"x","d":[2,{"z":1}]},"b":1}',
    );
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });
  it("decodes hex strictly", () => {
    expect(bytesToHex(hexToBytes("00ff10"))).toBe("00ff10");
    expect(() => hexToBytes("abc")).toThrow(TypeError);
    expect(() => hexToBytes("zz")).toThrow(TypeError);
    expect(bytesToHex(new Uint8Array([1, 2, 3, 4]).subarray(1, 3))).toBe("0203");
  });
  it("hashes bytes and strings", () => {
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe(sha256Hex("abc"));
  });
});
