// newOrder identifiers that are addresses in disguise or no one host's address
// (src/acme/identifiers.ts normaliseIdentifier): DNS names that name lookups read as an IPv4
// address, and the unspecified, "this network", broadcast and multicast addresses. Loopback stays
// allowed (tests and development validate on 127.0.0.1 and ::1).
import { describe, expect, it } from "vitest";
import { normaliseIdentifier } from "../../src/acme/identifiers.ts";
import { AcmeProblem } from "../../src/acme/problems.ts";

function refused(type: string, value: string): AcmeProblem {
  const p = normaliseIdentifier({ type, value });
  if (!(p instanceof AcmeProblem)) throw new Error(`${type}:${value} was accepted`);
  expect(p.type).toBe("rejectedIdentifier");
  expect(p.identifier).toEqual({ type, value });
  return p;
}

describe("newOrder identifiers that are not what they seem", () => {
  it.each(["0x7f000001", "0x7f.0x1", "0X7F.0.0.0x1", "127.0x1", "0x7f.1.0x0.0x1", "0x", "017700000001.0x0"])(
    "refuses dns %s: name lookups read it as an IPv4 address",
    (value) => {
      expect(refused("dns", value).message).toMatch(/labels are all numbers.*ip identifier/);
    },
  );

  it.each([
    "0x7f.example",
    "0xdead.beef",
    "1.2.3.4.0x5", // five labels: inet_aton reads at most four
    "123abc.example",
    "x0x1",
    "svc.0x1.example",
  ])("accepts dns %s", (value) => {
    expect(normaliseIdentifier({ type: "dns", value })).toEqual({ type: "dns", value: value.toLowerCase() });
  });

  it.each([
    ["0.0.0.0", /0\.0\.0\.0\/8/],
    ["0.1.2.3", /0\.0\.0\.0\/8/],
    ["255.255.255.255", /broadcast/],
    ["224.0.0.1", /multicast/],
    ["239.255.255.250", /multicast/],
    ["::", /unspecified/],
    ["0:0:0:0:0:0:0:0", /unspecified/],
    ["ff02::1", /multicast/],
    ["FF05::1:3", /multicast/],
  ])("refuses ip %s", (value, why) => {
    expect(refused("ip", value).message).toMatch(why);
  });

  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["127.1.2.3", "127.1.2.3"],
    ["::1", "::1"],
    ["10.0.0.1", "10.0.0.1"],
    ["223.255.255.255", "223.255.255.255"],
    ["240.0.0.1", "240.0.0.1"],
    ["fe80::1", "fe80::1"],
    ["2001:DB8::1", "2001:db8::1"],
  ])("accepts ip %s (loopback included)", (value, canonical) => {
    expect(normaliseIdentifier({ type: "ip", value })).toEqual({ type: "ip", value: canonical });
  });
});
