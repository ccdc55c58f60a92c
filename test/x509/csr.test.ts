import { afterAll, describe, expect, it } from "vitest";
import { parseCsr } from "../../src/x509/csr.ts";
import { fromPem, toHex, toPem } from "../../src/x509/der.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { nameToDer } from "../../src/x509/names.ts";
import { TempDir } from "./helpers.ts";
import { makeCsr } from "./csr-fixtures.ts";

const dir = new TempDir();
afterAll(() => dir.remove());
const SAN =
  "DNS:a.example,IP:10.0.0.1,DNS:b.example,email:ops@a.example,URI:spiffe://a.example/svc,IP:2001:db8::1";

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof X509Error)) throw e;
    return e.code;
  }
  return undefined;
};

describe("parseCsr with openssl-made CSRs", () => {
  it.each([
    ["rsa-2048", [], "rsa", 2048],
    ["rsa-2048", ["-sha512"], "rsa", 2048],
    ["rsa-1024", [], "rsa", 1024],
    ["rsa-2048", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"], "rsa", 2048],
    [
      "rsa-2048",
      ["-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"],
      "rsa",
      2048,
    ],
    ["rsa-pss-key", [], "rsa", 2048],
    ["p256", [], "ec-p256", 256],
    ["p384", ["-sha384"], "ec-p384", 384],
    ["p521", ["-sha512"], "ec-p521", 521],
    ["ed25519", [], "ed25519", 256],
    ["ed448", [], "ed448", 448],
  ] as const)("%s %j", (kind, reqArgs, keyType, keyBits) => {
    const pem = makeCsr(dir, kind, `${kind}-${reqArgs.length}`, { san: SAN, reqArgs: [...reqArgs] });
    const c = parseCsr(pem);
    expect(c.keyType).toBe(keyType);
    expect(c.keyBits).toBe(keyBits);
    expect(c.subjectString).toBe("CN=a.example, O=Example");
    // exact CSR bytes: openssl writes UTF8String, which re-encoding would turn into PrintableString
    expect(toHex(c.der)).toContain(toHex(c.subjectDer));
    expect(toHex(c.subjectDer)).toBe(
      "30263112301006035504030c09612e6578616d706c653110300e060355040a0c074578616d706c65",
    );
    expect(toHex(c.subjectDer)).not.toBe(toHex(nameToDer("CN=a.example, O=Example")));
    expect(toHex(c.der)).toContain(toHex(c.spkiDer));
    expect(c.keyFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(c.sans).toEqual([
      { type: "dns", value: "a.example" },
      { type: "ip", value: "10.0.0.1" },
      { type: "dns", value: "b.example" },
      { type: "email", value: "ops@a.example" },
      { type: "uri", value: "spiffe://a.example/svc" },
      { type: "ip", value: "2001:db8::1" },
    ]);
    // the same CSR as DER, as a PEM Uint8Array, and under the old label
    expect(toHex(parseCsr(c.der).spkiDer)).toBe(toHex(c.spkiDer));
    expect(parseCsr(new Uint8Array(Buffer.from(pem))).keyFingerprint).toBe(c.keyFingerprint);
    expect(parseCsr(toPem(c.der, "NEW CERTIFICATE REQUEST")).sans).toHaveLength(6);
    // a flipped bit in the signature is refused
    const bad = c.der.slice();
    bad[bad.length - 1]! ^= 0x01;
    expect(codeOf(() => parseCsr(bad))).toBe("CSR_BAD_SIGNATURE");
  });

  it("refuses a CSR whose signed content was altered (subject byte)", () => {
    const der = fromPem(makeCsr(dir, "p256", "alter"), ["CERTIFICATE REQUEST"]);
    const i = Buffer.from(der).indexOf(Buffer.from("a.example"));
    const bad = der.slice();
    bad[i] = "b".charCodeAt(0);
    expect(codeOf(() => parseCsr(bad))).toBe("CSR_BAD_SIGNATURE");
  });

  it("has no SANs when none are requested", () => {
    expect(parseCsr(makeCsr(dir, "ed25519", "nosan")).sans).toEqual([]);
  });

  it("accepts an empty subject", () => {
    const c = parseCsr(makeCsr(dir, "ed25519", "empty", { subject: "/", san: "DNS:x.example" }));
    expect(toHex(c.subjectDer)).toBe("3000");
    expect(c.subjectString).toBe("");
  });

  it("refuses a secp256k1 key, an SHA-1 signature and an otherName SAN", () => {
    expect(codeOf(() => parseCsr(makeCsr(dir, "secp256k1", "k1")))).toBe("KEY_TYPE_NOT_ALLOWED");
    expect(codeOf(() => parseCsr(makeCsr(dir, "p256", "sha1", { reqArgs: ["-sha1"] })))).toBe(
      "CSR_UNSUPPORTED_ALGORITHM",
    );
    expect(codeOf(() => parseCsr(makeCsr(dir, "p256", "other", { san: "otherName:1.2.3.4;UTF8:x" })))).toBe(
      "SAN_TYPE_NOT_ALLOWED",
    );
    expect(
      codeOf(() =>
        parseCsr(makeCsr(dir, "p256", "dir", { san: "dirName:dir_sect", reqArgs: ["-config", dirConfig()] })),
      ),
    ).toBe("SAN_TYPE_NOT_ALLOWED");
  });

  it("refuses garbage, trailing bytes, truncation, wrong PEM labels and oversize input", () => {
    const pem = makeCsr(dir, "p256", "shape");
    const der = fromPem(pem, ["CERTIFICATE REQUEST"]);
    expect(codeOf(() => parseCsr("hello"))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(""))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(new Uint8Array([0x30, 0x03, 1, 2, 3])))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(Uint8Array.of(...der, 0)))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(der.subarray(0, der.length - 1)))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(pem.replace(/CERTIFICATE REQUEST/g, "CERTIFICATE")))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(pem + pem))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(pem.replace(/\n[A-Za-z0-9]/, "\n!")))).toBe("CSR_MALFORMED");
    expect(codeOf(() => parseCsr(pem, { maxBytes: 100 }))).toBe("CSR_TOO_LARGE");
    expect(codeOf(() => parseCsr(new Uint8Array(20000)))).toBe("CSR_TOO_LARGE");
  });
});

function dirConfig(): string {
  return dir.file("dir.cnf", "[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=dir.example\n");
}
