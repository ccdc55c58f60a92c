import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { describe, expect, it } from "vitest";
import {
  HPKE_DKG_SHARE_INFO,
  HpkeError,
  generateHpkeKeyPair,
  hpkeOpen,
  hpkePublicFromPrivate,
  hpkeSeal,
} from "../../src/protocol/hpke.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const utf8 = (s: string) => new TextEncoder().encode(s);

async function expectOpenFails(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HpkeError);
  expect((err as HpkeError).code).toBe("HPKE_OPEN_FAILED");
}

describe("hpke", () => {
  const aad = utf8("ceremony=c1|from=alice|to=bob");
  const msg = utf8("a FROST signing share, 32 bytes.");

  it("round-trips seal/open with 32-byte raw keys", async () => {
    const { publicKey, privateKey } = await generateHpkeKeyPair();
    expect(publicKey).toHaveLength(32);
    expect(privateKey).toHaveLength(32);
    const { enc, ciphertext } = await hpkeSeal(publicKey, msg, aad, HPKE_DKG_SHARE_INFO);
    expect(enc).toHaveLength(32);
    expect(ciphertext).toHaveLength(msg.length + 16);
    expect(await hpkeOpen(privateKey, enc, ciphertext, aad, HPKE_DKG_SHARE_INFO)).toEqual(msg);
  });

  it("fresh encapsulation each time", async () => {
    const { publicKey } = await generateHpkeKeyPair();
    const a = await hpkeSeal(publicKey, msg, aad, HPKE_DKG_SHARE_INFO);
    const b = await hpkeSeal(publicKey, msg, aad, HPKE_DKG_SHARE_INFO);
    expect(a.enc).not.toEqual(b.enc);
    expect(a.ciphertext).not.toEqual(b.ciphertext);
  });

  it("wrong AAD, wrong info, wrong key, flipped ciphertext or enc byte → HPKE_OPEN_FAILED", async () => {
    const { publicKey, privateKey } = await generateHpkeKeyPair();
    const other = await generateHpkeKeyPair();
    const { enc, ciphertext } = await hpkeSeal(publicKey, msg, aad, HPKE_DKG_SHARE_INFO);

    await expectOpenFails(
      hpkeOpen(privateKey, enc, ciphertext, utf8("ceremony=c1|from=alice|to=carol"), HPKE_DKG_SHARE_INFO),
    );
    await expectOpenFails(hpkeOpen(privateKey, enc, ciphertext, aad, utf8("tca/dkg-share/v2")));
    await expectOpenFails(hpkeOpen(other.privateKey, enc, ciphertext, aad, HPKE_DKG_SHARE_INFO));

    for (const i of [0, ciphertext.length - 1]) {
      const bad = ciphertext.slice();
      bad[i]! ^= 0x01;
      await expectOpenFails(hpkeOpen(privateKey, enc, bad, aad, HPKE_DKG_SHARE_INFO));
    }
    const badEnc = enc.slice();
    badEnc[3]! ^= 0x80;
    await expectOpenFails(hpkeOpen(privateKey, badEnc, ciphertext, aad, HPKE_DKG_SHARE_INFO));
    await expectOpenFails(hpkeOpen(privateKey, enc.subarray(0, 31), ciphertext, aad, HPKE_DKG_SHARE_INFO));
    await expectOpenFails(hpkeOpen(privateKey.subarray(0, 16), enc, ciphertext, aad, HPKE_DKG_SHARE_INFO));
    await expectOpenFails(hpkeOpen(privateKey, enc, ciphertext.subarray(0, 10), aad, HPKE_DKG_SHARE_INFO));
  });

  it("refuses a malformed or low-order recipient public key", async () => {
    await expect(hpkeSeal(new Uint8Array(31), msg, aad, HPKE_DKG_SHARE_INFO)).rejects.toMatchObject({
      code: "HPKE_INVALID_KEY",
    });
    // The all-zero point gives an all-zero shared secret; RFC 9180 §7.1.4 says to abort.
    await expect(hpkeSeal(new Uint8Array(32), msg, aad, HPKE_DKG_SHARE_INFO)).rejects.toMatchObject({
      code: "HPKE_SEAL_FAILED",
    });
  });

  it("public-from-private matches the generated public key", async () => {
    const { publicKey, privateKey } = await generateHpkeKeyPair();
    expect(hpkePublicFromPrivate(privateKey)).toEqual(publicKey);
  });

  // RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
  describe("RFC 9180 A.1.1 known answers", () => {
    const v = {
      info: hex("4f6465206f6e2061204772656369616e2055726e"),
      ikmE: hex("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"),
      pkEm: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
      skEm: hex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736"),
      ikmR: hex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"),
      pkRm: hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"),
      skRm: hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"),
      enc: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
      pt: hex("4265617574792069732074727574682c20747275746820626561757479"),
      aad0: hex("436f756e742d30"),
      ct0: hex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"),
    };

    it("hpkePublicFromPrivate(skRm) = pkRm and (skEm) = pkEm", () => {
      expect(hpkePublicFromPrivate(v.skRm)).toEqual(v.pkRm);
      expect(hpkePublicFromPrivate(v.skEm)).toEqual(v.pkEm);
    });

    it("hpkeOpen decrypts the RFC's first ciphertext", async () => {
      expect(await hpkeOpen(v.skRm, v.enc, v.ct0, v.aad0, v.info)).toEqual(v.pt);
    });

    it("the same suite with the RFC's ephemeral key reproduces enc and ct (DeriveKeyPair + seal)", async () => {
      const kem = new DhkemX25519HkdfSha256();
      const suite = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes128Gcm() });
      const r = await kem.deriveKeyPair(v.ikmR);
      expect(new Uint8Array(await kem.serializePrivateKey(r.privateKey))).toEqual(v.skRm);
      expect(new Uint8Array(await kem.serializePublicKey(r.publicKey))).toEqual(v.pkRm);
      const pk = await kem.deserializePublicKey(v.pkRm);
      const out = await suite.seal({ recipientPublicKey: pk, info: v.info, ekm: v.ikmE }, v.pt, v.aad0);
      expect(new Uint8Array(out.enc)).toEqual(v.enc);
      expect(new Uint8Array(out.ct)).toEqual(v.ct0);
    });
  });
});
