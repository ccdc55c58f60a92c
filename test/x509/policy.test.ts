import { afterAll, describe, expect, it } from "vitest";
import { checkExclusiveNames, checkRequest, checkValidity, REQUEST_CHECKS } from "../../src/x509/policy.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { nameToDer } from "../../src/x509/names.ts";
import { X509Error } from "../../src/x509/errors.ts";
import type { San } from "../../src/x509/sans.ts";
import type { KeyType } from "../../src/config/schema.ts";
import { TempDir } from "./helpers.ts";
import { makeCsr } from "./csr-fixtures.ts";
import { serverProfile } from "./profiles.ts";

const dir = new TempDir();
afterAll(() => dir.remove());

const facts = (o: { keyType?: KeyType; keyBits?: number; sans?: San[]; subject?: string } = {}) => ({
  keyType: o.keyType ?? ("ec-p256" as KeyType),
  keyBits: o.keyBits ?? 256,
  sans: o.sans ?? [{ type: "dns" as const, value: "api.svc.internal" }],
  subjectDer: o.subject === "" ? Uint8Array.of(0x30, 0) : nameToDer(o.subject ?? "CN=api.svc.internal"),
});
const dns = (...v: string[]): San[] => v.map((value) => ({ type: "dns", value }));
const clientLike = {
  ...serverProfile,
  sans: { dns: true, ip: true, email: true, uri: true, max: 20, requireOne: false },
};

function codeOf(fn: () => void): [string | undefined, string | undefined] {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof X509Error)) throw e;
    return [e.code, e.field];
  }
  return [undefined, undefined];
}

describe("requester grants cover every kind of name", () => {
  const sans = (...v: [San["type"], string][]): San[] => v.map(([type, value]) => ({ type, value }));
  const grant = { allowedNames: ["*.svc.internal", "10.0.0.1", "*@example.com", "spiffe://example.com/*"] };
  it("accepts names each pattern covers", () => {
    const ok = sans(
      ["dns", "a.svc.internal"],
      ["ip", "10.0.0.1"],
      ["email", "Ops@Example.com"],
      ["uri", "spiffe://example.com/ns/a"],
    );
    expect(codeOf(() => checkRequest(facts({ sans: ok }), clientLike, grant))).toEqual([
      undefined,
      undefined,
    ]);
  });
  it.each([
    ["an IP outside the grant", sans(["ip", "10.0.0.2"])],
    ["an email outside the grant", sans(["email", "ops@evil.com"])],
    ["a URI outside the grant", sans(["uri", "spiffe://evil.com/ns/a"])],
    ["a URI that climbs out of the granted prefix", sans(["uri", "spiffe://example.com/ns/../../other"])],
    ["a URI with an encoded dot segment", sans(["uri", "spiffe://example.com/%2e%2e/other"])],
    ["a URI with a query under the prefix", sans(["uri", "spiffe://example.com/a?x=y"])],
  ])("refuses %s", (_what, s) => {
    expect(codeOf(() => checkRequest(facts({ sans: s }), clientLike, grant))[0]).toBe("NAME_NOT_ALLOWED");
  });
});

describe("checkRequest", () => {
  it("runs its checks in a fixed order", () => {
    expect(REQUEST_CHECKS.map(([n]) => n)).toEqual([
      "keyType",
      "rsaBits",
      "sanTypes",
      "sanCount",
      "sanRequired",
      "sanSyntax",
      "subjectShape",
      "subjectBounds",
      "requesterNames",
    ]);
  });

  it("refuses a subject emailAddress attribute (emails belong in subjectAltName)", () => {
    expect(
      codeOf(() => checkRequest(facts({ subject: "CN=ok.svc.internal, E=ops@example.com" }), serverProfile)),
    ).toEqual(["NAME_INVALID", "subject"]);
  });

  it("refuses a subject with two CNs or a multi-valued RDN (stacks disagree on which CN counts)", () => {
    expect(
      codeOf(() =>
        checkRequest(facts({ subject: "CN=ok.svc.internal, CN=evil.example.com" }), serverProfile),
      ),
    ).toEqual(["NAME_INVALID", "subject"]);
    expect(
      codeOf(() => checkRequest(facts({ subject: "CN=evil.example.com+CN=ok.svc.internal" }), serverProfile)),
    ).toEqual(["NAME_INVALID", "subject"]);
    expect(
      codeOf(() => checkRequest(facts({ subject: "CN=ok.svc.internal, O=Example" }), serverProfile)),
    ).toEqual([undefined, undefined]);
  });

  it("accepts a good request, with and without a requester", () => {
    expect(codeOf(() => checkRequest(facts(), serverProfile))).toEqual([undefined, undefined]);
    expect(codeOf(() => checkRequest(facts(), serverProfile, { allowedNames: ["*.svc.internal"] }))).toEqual([
      undefined,
      undefined,
    ]);
    expect(
      codeOf(() =>
        checkRequest(facts({ sans: dns("*.a.svc.internal", "x.svc.internal") }), serverProfile, {
          allowedNames: ["*.svc.internal"],
        }),
      ),
    ).toEqual([undefined, undefined]);
  });

  it("refuses RSA-1024 from a real openssl CSR, accepts RSA-2048", () => {
    const weak = parseCsr(makeCsr(dir, "rsa-1024", "weak", { san: "DNS:a.example" }));
    expect(codeOf(() => checkRequest(weak, serverProfile))).toEqual(["KEY_SIZE_NOT_ALLOWED", "keyBits"]);
    const ok = parseCsr(makeCsr(dir, "rsa-2048", "ok", { san: "DNS:a.example" }));
    expect(codeOf(() => checkRequest(ok, serverProfile))[0]).toBeUndefined();
  });

  it.each<
    [string, Parameters<typeof facts>[0], Partial<typeof serverProfile>, string[] | undefined, string, string]
  >([
    [
      "key type",
      { keyType: "ed448" },
      { keyTypes: ["ed25519"] },
      undefined,
      "KEY_TYPE_NOT_ALLOWED",
      "keyType",
    ],
    ["RSA too big", { keyType: "rsa", keyBits: 8192 }, {}, undefined, "KEY_SIZE_NOT_ALLOWED", "keyBits"],
    [
      "IP SAN not allowed",
      { sans: [{ type: "ip", value: "10.0.0.1" }] },
      { sans: { ...serverProfile.sans, ip: false } },
      undefined,
      "SAN_TYPE_NOT_ALLOWED",
      "10.0.0.1",
    ],
    [
      "email SAN not allowed",
      { sans: [{ type: "email", value: "a@b.example" }] },
      { sans: { ...serverProfile.sans, email: false } },
      undefined,
      "SAN_TYPE_NOT_ALLOWED",
      "a@b.example",
    ],
    [
      "too many names",
      { sans: dns("a.example", "b.example", "c.example") },
      { sans: { ...serverProfile.sans, max: 2 } },
      undefined,
      "TOO_MANY_NAMES",
      "subjectAltName",
    ],
    ["no SAN when one is required", { sans: [] }, {}, undefined, "SAN_REQUIRED", "subjectAltName"],
    ["bad DNS label", { sans: dns("a_b.example") }, {}, undefined, "NAME_INVALID", "a_b.example"],
    ["hyphen at label edge", { sans: dns("-a.example") }, {}, undefined, "NAME_INVALID", "-a.example"],
    [
      "label too long",
      { sans: dns(`${"a".repeat(64)}.example`) },
      {},
      undefined,
      "NAME_INVALID",
      `${"a".repeat(64)}.example`,
    ],
    ["wildcard over a TLD", { sans: dns("*.com") }, {}, undefined, "NAME_INVALID", "*.com"],
    ["partial wildcard", { sans: dns("a*.example.com") }, {}, undefined, "NAME_INVALID", "a*.example.com"],
    [
      "wildcard not leftmost",
      { sans: dns("a.*.example.com") },
      {},
      undefined,
      "NAME_INVALID",
      "a.*.example.com",
    ],
    ["trailing dot", { sans: dns("a.example.") }, {}, undefined, "NAME_INVALID", "a.example."],
    ["empty DNS name", { sans: dns("") }, {}, undefined, "NAME_INVALID", ""],
    ["numeric TLD", { sans: dns("10.0.0.1") }, {}, undefined, "NAME_INVALID", "10.0.0.1"],
    ["bad IP", { sans: [{ type: "ip", value: "300.1.1.1" }] }, {}, undefined, "NAME_INVALID", "300.1.1.1"],
    [
      "bad email",
      { sans: [{ type: "email", value: "no-at-sign" }] },
      {},
      undefined,
      "NAME_INVALID",
      "no-at-sign",
    ],
    [
      "email with bad domain",
      { sans: [{ type: "email", value: "a@-x.example" }] },
      {},
      undefined,
      "NAME_INVALID",
      "a@-x.example",
    ],
    [
      "relative URI",
      { sans: [{ type: "uri", value: "/just/a/path" }] },
      {},
      undefined,
      "NAME_INVALID",
      "/just/a/path",
    ],
    [
      "URI with a space",
      { sans: [{ type: "uri", value: "https://a.example/x y" }] },
      {},
      undefined,
      "NAME_INVALID",
      "https://a.example/x y",
    ],
    [
      "DNS name outside the grant",
      { sans: dns("api.svc.internal", "evil.example") },
      {},
      ["*.svc.internal"],
      "NAME_NOT_ALLOWED",
      "evil.example",
    ],
    [
      "suffix without the dot",
      { sans: dns("xsvc.internal") },
      {},
      ["*.svc.internal"],
      "NAME_NOT_ALLOWED",
      "xsvc.internal",
    ],
    [
      "the bare suffix",
      { sans: dns("svc.internal") },
      {},
      ["*.svc.internal"],
      "NAME_NOT_ALLOWED",
      "svc.internal",
    ],
    [
      "exact pattern, other name",
      { sans: dns("api2.example") },
      {},
      ["api.example"],
      "NAME_NOT_ALLOWED",
      "api2.example",
    ],
    [
      "CN outside the grant",
      { subject: "CN=root.example" },
      {},
      ["*.svc.internal"],
      "NAME_NOT_ALLOWED",
      "root.example",
    ],
    ["empty grant", {}, {}, [], "NAME_NOT_ALLOWED", "api.svc.internal"],
  ])("refuses %s", (_, f, prof, allowed, code, field) => {
    const r = allowed ? { allowedNames: allowed } : undefined;
    expect(codeOf(() => checkRequest(facts(f), { ...serverProfile, ...prof }, r))).toEqual([code, field]);
  });

  it("matches exact names case-insensitively and '*' matches anything", () => {
    expect(
      codeOf(() =>
        checkRequest(facts({ sans: dns("API.Example"), subject: "CN=api.example" }), serverProfile, {
          allowedNames: ["api.example"],
        }),
      )[0],
    ).toBeUndefined();
    expect(
      codeOf(() =>
        checkRequest(facts({ sans: dns("any.where.example") }), serverProfile, { allowedNames: ["*"] }),
      )[0],
    ).toBeUndefined();
  });

  it("accepts IPv6, emails and absolute URIs", () => {
    const sans: San[] = [
      { type: "ip", value: "2001:db8::1" },
      { type: "email", value: "ops.team+x@a.example" },
      { type: "uri", value: "spiffe://trust.example/ns/a/sa/b" },
    ];
    expect(codeOf(() => checkRequest(facts({ sans }), serverProfile))[0]).toBeUndefined();
  });
});

describe("checkValidity", () => {
  const nb = new Date("2026-03-01T00:00:00Z");
  const ok = {
    notBefore: nb,
    notAfter: new Date("2026-04-01T00:00:00Z"),
    profile: serverProfile,
    caNotAfter: new Date("2036-01-01T00:00:00Z"),
  };
  it("accepts a span within the cap and the CA lifetime", () => {
    expect(codeOf(() => checkValidity(ok))[0]).toBeUndefined();
    expect(
      codeOf(() => checkValidity({ ...ok, notAfter: new Date(nb.getTime() + 2160 * 3_600_000) }))[0],
    ).toBeUndefined();
    expect(codeOf(() => checkValidity({ ...ok, now: new Date("2026-03-01T00:04:00Z") }))[0]).toBeUndefined();
  });
  it.each([
    ["inverted", { notAfter: new Date("2026-02-01T00:00:00Z") }, "notAfter"],
    ["zero length", { notAfter: nb }, "notAfter"],
    ["over the profile cap", { notAfter: new Date(nb.getTime() + 2160 * 3_600_000 + 1000) }, "notAfter"],
    ["past the CA's notAfter", { caNotAfter: new Date("2026-03-15T00:00:00Z") }, "notAfter"],
    ["notBefore far from the clock", { now: new Date("2026-03-01T00:10:00Z") }, "notBefore"],
  ])("refuses %s", (_, over, field) => {
    expect(codeOf(() => checkValidity({ ...ok, ...over }))).toEqual(["VALIDITY_NOT_ALLOWED", field]);
  });
});

describe("exclusive grants (the coordinator's own names, docs/tls.md)", () => {
  const requesters = [
    { name: "coordinator", allowedNames: ["ca.example.internal", "10.0.0.9"], exclusive: true },
    { name: "deploy", allowedNames: ["*"] },
  ];
  const ip = (value: string): San[] => [{ type: "ip", value }];
  it.each([
    ["the reserved DNS name", facts({ sans: dns("ca.example.internal"), subject: "CN=x" })],
    ["it in the CN only", facts({ sans: dns("api.example.internal"), subject: "CN=ca.example.internal" })],
    ["a wildcard that covers it", facts({ sans: dns("*.example.internal"), subject: "CN=x" })],
    ["the reserved IP", facts({ sans: ip("10.0.0.9"), subject: "CN=x" })],
    ["it as an IPv4-mapped IPv6 address", facts({ sans: ip("::ffff:10.0.0.9"), subject: "CN=x" })],
    [
      "it in the CN with a trailing dot and other case",
      facts({ sans: ip("192.0.2.9"), subject: "CN=CA.Example.Internal." }),
    ],
  ])("refuses another requester asking for %s", (_what, f) => {
    expect(codeOf(() => checkExclusiveNames(f, "deploy", requesters))).toEqual([
      "NAME_NOT_ALLOWED",
      expect.any(String),
    ]);
  });
  it("lets the owner ask for them, and others for names outside", () => {
    const own = facts({ sans: dns("ca.example.internal"), subject: "CN=ca.example.internal" });
    expect(codeOf(() => checkExclusiveNames(own, "coordinator", requesters))[0]).toBeUndefined();
    const other = facts({ sans: dns("api.example.internal"), subject: "CN=api.example.internal" });
    expect(codeOf(() => checkExclusiveNames(other, "deploy", requesters))[0]).toBeUndefined();
    // Not exclusive: shared as before.
    const shared = requesters.map((r) => ({ ...r, exclusive: false }));
    expect(codeOf(() => checkExclusiveNames(own, "deploy", shared))[0]).toBeUndefined();
  });
});
