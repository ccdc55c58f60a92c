import { describe, expect, it } from "vitest";
import { checkSerial, randomSerial, serialHex } from "../../src/x509/serial.ts";
import { fromHex } from "../../src/x509/der.ts";
import { X509Error } from "../../src/x509/errors.ts";

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof X509Error ? e.code : `not X509Error: ${String(e)}`;
  }
  return undefined;
};

describe("randomSerial", () => {
  it("is a positive, minimal DER INTEGER of 16 or 17 octets, different each time", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = randomSerial();
      expect([16, 17]).toContain(s.length);
      if (s.length === 17) {
        expect(s[0]).toBe(0);
        expect(s[1]! & 0x80).toBe(0x80);
      } else {
        expect(s[0]! & 0x80).toBe(0);
        expect(s[0]).not.toBe(0);
      }
      expect(() => checkSerial(s)).not.toThrow();
      seen.add(Buffer.from(s).toString("hex"));
    }
    expect(seen.size).toBe(2000);
  });
});

describe("checkSerial", () => {
  it("accepts 9..20 octet positive minimal integers", () => {
    expect(() => checkSerial(fromHex("010203040506070809"))).not.toThrow();
    expect(() => checkSerial(fromHex("00" + "80".repeat(19)))).not.toThrow();
    expect(() => checkSerial(fromHex("7f".repeat(20)))).not.toThrow();
  });
  it.each([
    ["too short (8 octets)", "0102030405060708"],
    ["too long (21 octets)", "01".repeat(21)],
    ["negative", "80" + "01".repeat(9)],
    ["non-minimal leading zero", "00" + "01".repeat(9)],
    ["zero", "00".repeat(10)],
    ["empty", ""],
  ])("refuses %s", (_, hex) => {
    expect(code(() => checkSerial(fromHex(hex)))).toBe("SERIAL_INVALID");
  });
  it("serialHex drops the sign octet", () => {
    expect(serialHex(fromHex("00ff0102030405060708"))).toBe("ff0102030405060708");
  });
});
