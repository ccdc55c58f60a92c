import { describe, expect, it } from "vitest";
import { fromHex, fromPem, oid, smallInteger, toHex, toPem, tlv } from "../../src/x509/der.ts";
import { children, decodeOid, readDer } from "../../src/x509/der-read.ts";
import { decodeTime, encodeTime } from "../../src/x509/time.ts";
import { bytesToIp, ipToBytes } from "../../src/x509/ip.ts";
import { commonNames, derToName, nameToDer } from "../../src/x509/names.ts";
import { keyUsage } from "../../src/x509/extensions.ts";
import { X509Error } from "../../src/x509/errors.ts";

describe("DER writer and reader", () => {
  it("encodes OIDs, integers and long lengths", () => {
    expect(toHex(oid("1.3.101.112"))).toBe("06032b6570");
    expect(toHex(oid("2.5.29.37"))).toBe("0603551d25");
    expect(toHex(oid("1.2.840.113549.1.9.14"))).toBe("06092a864886f70d01090e");
    expect(decodeOid(readDer(oid("1.2.840.113549.1.9.14")))).toBe("1.2.840.113549.1.9.14");
    expect(toHex(smallInteger(0))).toBe("020100");
    expect(toHex(smallInteger(128))).toBe("02020080");
    expect(toHex(tlv(0x04, new Uint8Array(200))).slice(0, 6)).toBe("0481c8");
    expect(toHex(tlv(0x04, new Uint8Array(300))).slice(0, 8)).toBe("0482012c");
  });
  it("refuses indefinite and non-minimal lengths, truncation and trailing bytes", () => {
    expect(() => readDer(fromHex("3080"))).toThrow(/indefinite/);
    expect(() => readDer(fromHex("30810100"))).toThrow(/non-minimal/);
    expect(() => readDer(fromHex("300301"))).toThrow(/past the end/);
    expect(() => readDer(fromHex("300000"))).toThrow(/trailing/);
    expect(children(readDer(fromHex("3006020101020102"))).map((c) => toHex(c.raw))).toEqual([
      "020101",
      "020102",
    ]);
  });
  it("KeyUsage drops trailing zero bits (X.690 §11.2.2)", () => {
    expect(toHex(keyUsage(["digitalSignature"]).value)).toBe("03020780");
    expect(toHex(keyUsage(["keyCertSign", "cRLSign"]).value)).toBe("03020106");
    expect(toHex(keyUsage(["digitalSignature", "decipherOnly"]).value)).toBe("0303078080");
  });
  it("PEM round trip and refusals", () => {
    const der = fromHex("3000");
    expect(toHex(fromPem(`junk before\n${toPem(der, "X Y")}junk after`, ["X Y"]))).toBe(toHex(der));
    expect(() => fromPem(toPem(der, "X"), ["Y"])).toThrow(X509Error);
    expect(() => fromPem("-----BEGIN X-----\nAAA\n-----END Y-----\n", ["X"])).toThrow(X509Error);
  });
});

describe("times (RFC 5280 §4.1.2.5)", () => {
  it.each([
    ["2026-01-02T03:04:05.678Z", "170d3236303130323033303430355a", "2026-01-02T03:04:05.000Z"],
    ["2049-12-31T23:59:59Z", "170d3439313233313233353935395a", "2049-12-31T23:59:59.000Z"],
    ["2050-01-01T00:00:00Z", "180f32303530303130313030303030305a", "2050-01-01T00:00:00.000Z"],
    ["1950-01-01T00:00:00Z", "170d3530303130313030303030305a", "1950-01-01T00:00:00.000Z"],
  ])("%s", (iso, hex, back) => {
    const enc = encodeTime(new Date(iso));
    expect(toHex(enc)).toBe(hex);
    expect(decodeTime(readDer(enc)).toISOString()).toBe(back);
  });
  it("refuses fractional seconds, offsets and bad dates", () => {
    for (const [tag, s] of [
      [0x18, "20500101000000.5Z"],
      [0x17, "2601010000Z"],
      [0x17, "260101000000+0100"],
      [0x17, "260231000000Z"],
    ] as const) {
      expect(() => decodeTime(readDer(tlv(tag, new Uint8Array(Buffer.from(s)))))).toThrow();
    }
  });
});

describe("IP addresses", () => {
  it.each([
    ["10.0.0.1", "0a000001", "10.0.0.1"],
    ["2001:db8::1", "20010db8000000000000000000000001", "2001:db8::1"],
    ["::", "00000000000000000000000000000000", "::"],
    ["::ffff:1.2.3.4", "00000000000000000000ffff01020304", "::ffff:102:304"],
    ["1:0:0:1:0:0:0:1", "00010000000000010000000000000001", "1:0:0:1::1"],
  ])("%s", (text, hex, back) => {
    expect(toHex(ipToBytes(text)!)).toBe(hex);
    expect(bytesToIp(fromHex(hex))).toBe(back);
  });
  it("refuses non-addresses", () => {
    for (const s of ["300.1.1.1", "1.2.3", "fe80::1%eth0", "a.example", ""])
      expect(ipToBytes(s)).toBeUndefined();
  });
});

describe("names (RFC 4514 -> DER)", () => {
  it("is deterministic and round-trips", () => {
    const der = nameToDer("CN=Example Root CA, O=Example, C=US");
    expect(toHex(der)).toBe(toHex(nameToDer("CN=Example Root CA, O=Example, C=US")));
    expect(derToName(der)).toBe("CN=Example Root CA, O=Example, C=US");
    expect(commonNames(der)).toEqual(["Example Root CA"]);
    expect(derToName(nameToDer("CN=a\\,b"))).toBe("CN=a\\,b");
  });
  it.each(["", "garbage", "CN=", "CN=a,,O=b", "CN=a, =b", "cn=x, FOO=y"])("refuses %j", (s) => {
    expect(() => nameToDer(s)).toThrow(expect.objectContaining({ code: "NAME_INVALID" }));
  });
});
