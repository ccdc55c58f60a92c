// A policy rule with `acmeValidated: true` (src/custodian/policy.ts): it approves only a request whose
// ACME origin's identifiers are exactly the names in the TBS the custodian derived, each validated
// recently enough before the request; what the rule's other checks ask still applies.
import { describe, expect, it } from "vitest";
import { acmeOriginProblem, evaluatePolicy, PolicySchema } from "../../src/custodian/policy.ts";
import type { Review } from "../../src/custodian/session.ts";
import type { RequestOrigin, ValidatedIdentifier } from "../../src/protocol/origin.ts";
import { originLines } from "../../src/cli/commands/custodian-requests.ts";
import { originNote } from "../../src/custodian/session.ts";
import { Journal } from "../../src/custodian/journal.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";

const CREATED = "2026-03-01T12:00:00.000Z";
const hoursBefore = (h: number) => new Date(Date.parse(CREATED) - h * 3_600_000).toISOString();

const policy = PolicySchema.parse({
  version: 1,
  autoApprove: [
    {
      name: "acme-internal",
      profiles: ["acme"],
      names: ["*.svc.internal", "10.0.0.0", "10.1.2.3", "fd00::1"],
      acmeValidated: true,
      maxValidityHours: 2160,
    },
  ],
});

const id = (value: string, o: Partial<ValidatedIdentifier> = {}): ValidatedIdentifier => ({
  type: "dns",
  value,
  challenge: "http-01",
  validatedAt: hoursBefore(1),
  ...o,
});

function acme(...identifiers: ValidatedIdentifier[]): RequestOrigin {
  return { kind: "acme", account: "acct-1", order: "order-1", identifiers };
}

function review(o: {
  sans?: { type: string; value: string }[];
  cns?: string[];
  /** The subject as RFC 4514 text; default: one RDN per CN, as x509/names.ts renders it. */
  subject?: string;
  origin?: RequestOrigin | null;
  profile?: string;
  hours?: number;
}): Review {
  const sans = o.sans ?? [{ type: "dns", value: "a.svc.internal" }];
  return {
    request: {
      id: "00000000-0000-4000-8000-000000000001",
      profile: o.profile ?? "acme",
      requester: "acme",
      createdAt: CREATED,
      origin: o.origin === undefined ? acme(id("a.svc.internal")) : o.origin,
      keyType: "ec-p256",
      status: "pending",
      approvals: [],
      threshold: 2,
      missing: 2,
    },
    tbs: {
      subject: o.subject ?? (o.cns ?? []).map((cn) => `CN=${cn}`).join(", "),
      sans,
      validityHours: o.hours ?? 2160,
      publicKey: { type: "ec-p256", bits: 256, sha256: "00" },
    },
    commonNames: o.cns ?? [],
  } as unknown as Review;
}

const why = (r: Review) => {
  const d = evaluatePolicy(policy, r);
  expect(d.approve).toBe(false);
  return d.reason;
};

describe("acmeValidated rules", () => {
  it("approve an ACME request whose validated identifiers are exactly its names", () => {
    expect(evaluatePolicy(policy, review({}))).toEqual({
      approve: true,
      reason: 'matches rule "acme-internal"',
    });
    // DNS names compare case-insensitively; the CN is one of the names; an IP identifier matches
    // an iPAddress SAN by its octets, whatever the text form.
    const many = review({
      sans: [
        { type: "dns", value: "B.svc.internal" },
        { type: "dns", value: "*.svc.internal" },
        { type: "ip", value: "fd00::1" },
      ],
      cns: ["b.svc.internal"],
      origin: acme(
        id("b.SVC.internal", { challenge: "dns-01" }),
        id("*.svc.internal", { challenge: "dns-01" }),
        id("fd00:0:0:0:0:0:0:1", { type: "ip", challenge: "tls-alpn-01" }),
      ),
    });
    expect(evaluatePolicy(policy, many).approve).toBe(true);
  });

  it("refuse a request that did not come from ACME", () => {
    expect(why(review({ origin: null }))).toMatch(/did not come from an ACME order/);
  });

  it("refuse a request with a SAN the order did not validate, naming it", () => {
    const r = review({
      sans: [
        { type: "dns", value: "a.svc.internal" },
        { type: "dns", value: "b.svc.internal" },
      ],
    });
    expect(why(r)).toMatch(/name b\.svc\.internal was not validated by ACME order order-1/);
  });

  it("refuse a CN the order did not validate", () => {
    expect(why(review({ cns: ["c.svc.internal"] }))).toMatch(/name c\.svc\.internal was not validated/);
  });

  it("refuse a wildcard SAN when only its base name was validated", () => {
    const r = review({
      sans: [{ type: "dns", value: "*.a.svc.internal" }],
      origin: acme(id("a.svc.internal", { challenge: "dns-01" })),
    });
    expect(why(r)).toMatch(/name \*\.a\.svc\.internal was not validated/);
    // …and a plain name is not vouched for by a wildcard identifier either.
    const plain = review({
      sans: [{ type: "dns", value: "x.a.svc.internal" }],
      origin: acme(id("*.a.svc.internal", { challenge: "dns-01" })),
    });
    expect(why(plain)).toMatch(/name x\.a\.svc\.internal was not validated/);
  });

  it("refuse an identifier left over that the certificate does not carry", () => {
    const r = review({ origin: acme(id("a.svc.internal"), id("b.svc.internal")) });
    expect(why(r)).toMatch(/ACME identifier b\.svc\.internal is not among the certificate's names/);
  });

  it("refuse an IP SAN validated only as a DNS name, and names ACME never validates", () => {
    const ip = review({
      sans: [{ type: "ip", value: "10.1.2.3" }],
      origin: acme(id("10.1.2.3")),
    });
    expect(why(ip)).toMatch(/name 10\.1\.2\.3 was not validated/);
    const email = review({
      sans: [
        { type: "dns", value: "a.svc.internal" },
        { type: "email", value: "x@a.svc.internal" },
      ],
    });
    // The rule's own names check refuses it first; either way it is not approved.
    expect(evaluatePolicy(policy, email).approve).toBe(false);
  });

  it("refuse a subject with anything but one CN, whatever the coordinator accepted", () => {
    const cns = ["a.svc.internal"];
    // The CN is a validated name; the rest of the subject is vouched for by no one.
    expect(why(review({ cns, subject: "CN=a.svc.internal, O=system:masters, OU=admins" }))).toMatch(
      /subject "CN=a\.svc\.internal, O=system:masters, OU=admins" is not empty or exactly one CN/,
    );
    expect(why(review({ cns, subject: "CN=a.svc.internal+O=x" }))).toMatch(/not empty or exactly one CN/);
    expect(why(review({ cns: [], subject: "O=system:masters" }))).toMatch(/not empty or exactly one CN/);
    // Two CNs, each a validated name: still not one CN.
    const two = review({
      sans: [
        { type: "dns", value: "a.svc.internal" },
        { type: "dns", value: "b.svc.internal" },
      ],
      cns: ["a.svc.internal", "b.svc.internal"],
      origin: acme(id("a.svc.internal"), id("b.svc.internal")),
    });
    expect(why(two)).toMatch(/not empty or exactly one CN/);
    // A CN whose value needs escaping in RFC 4514 text hides nothing: refused as well.
    const escaped = review({ cns: ["a.svc.internal, O=x"], subject: "CN=a.svc.internal\\, O=x" });
    expect(acmeOriginProblem(escaped)).toMatch(/not empty or exactly one CN/);
    // Empty subject, or just the CN: approved.
    expect(evaluatePolicy(policy, review({ cns: [] })).approve).toBe(true);
    expect(evaluatePolicy(policy, review({ cns })).approve).toBe(true);
  });

  it("fold only A-Z when comparing DNS names: U+212A KELVIN SIGN is not k", () => {
    const kelvin = "\u212Aube.svc.internal";
    expect(kelvin.toLowerCase()).toBe("kube.svc.internal"); // what Unicode folding would do
    const origin = acme(id("kube.svc.internal"));
    // As the CN: not printable ASCII.
    expect(
      why(review({ sans: [{ type: "dns", value: "kube.svc.internal" }], cns: [kelvin], origin })),
    ).toMatch(/CN "\u212Aube\.svc\.internal" is not printable ASCII/);
    // As a SAN: not the validated name.
    expect(why(review({ sans: [{ type: "dns", value: kelvin }], origin }))).toMatch(
      /name \u212Aube\.svc\.internal was not validated/,
    );
    // ASCII case still folds.
    expect(
      evaluatePolicy(policy, review({ sans: [{ type: "dns", value: "KUBE.svc.internal" }], origin })).approve,
    ).toBe(true);
  });

  it("refuse a stale validation (default 720 h), and honour acmeValidatedWithinHours", () => {
    const stale = review({ origin: acme(id("a.svc.internal", { validatedAt: hoursBefore(721) })) });
    expect(why(stale)).toMatch(/validated at .* more than 720 h before the request/);
    const fresh = review({ origin: acme(id("a.svc.internal", { validatedAt: hoursBefore(719) })) });
    expect(evaluatePolicy(policy, fresh).approve).toBe(true);
    const strict = PolicySchema.parse({
      version: 1,
      autoApprove: [{ ...policy.autoApprove[0], acmeValidatedWithinHours: 24 }],
    });
    const day = review({ origin: acme(id("a.svc.internal", { validatedAt: hoursBefore(25) })) });
    expect(evaluatePolicy(strict, day).reason).toMatch(/more than 24 h before the request/);
  });

  it("refuse a validation that claims to follow the request", () => {
    const later = review({ origin: acme(id("a.svc.internal", { validatedAt: hoursBefore(-1) })) });
    expect(why(later)).toMatch(/does not precede the request/);
  });

  it("still apply the rule's other checks", () => {
    expect(why(review({ profile: "server" }))).toMatch(/profile server/);
    expect(why(review({ hours: 2161 }))).toMatch(/validity 2161 h exceeds 2160 h/);
    const outside = review({
      sans: [{ type: "dns", value: "www.example.com" }],
      origin: acme(id("www.example.com")),
    });
    expect(why(outside)).toMatch(/name www\.example\.com matches none of/);
  });

  it("leave rules without acmeValidated as they were, and refuse acmeValidatedWithinHours alone", () => {
    const plain = PolicySchema.parse({
      version: 1,
      autoApprove: [{ name: "any", profiles: ["acme"], names: ["*"], maxValidityHours: 2160 }],
    });
    expect(evaluatePolicy(plain, review({ origin: null })).approve).toBe(true);
    expect(
      PolicySchema.safeParse({
        version: 1,
        autoApprove: [
          { name: "x", profiles: ["acme"], names: ["*"], maxValidityHours: 1, acmeValidatedWithinHours: 5 },
        ],
      }).success,
    ).toBe(false);
  });
});

describe("tca custodian requests show", () => {
  it("prints the origin, each validated identifier, and whether they cover the certificate", () => {
    const lines = originLines(
      review({
        sans: [
          { type: "dns", value: "a.svc.internal" },
          { type: "ip", value: "10.1.2.3" },
        ],
        origin: acme(
          id("a.svc.internal", { validatedAt: "2026-03-01T11:00:00.000Z" }),
          id("10.1.2.3", { type: "ip", challenge: "tls-alpn-01", validatedAt: "2026-03-01T11:30:00.000Z" }),
        ),
      }),
    );
    expect(lines).toEqual([
      "origin     ACME account acct-1, order order-1",
      "validated  a.svc.internal by http-01 at 2026-03-01T11:00:00.000Z",
      "validated  IP:10.1.2.3 by tls-alpn-01 at 2026-03-01T11:30:00.000Z",
      "ACME       the validated identifiers are exactly the certificate's names (within 720 h)",
    ]);
    const extra = originLines(
      review({
        sans: [
          { type: "dns", value: "a.svc.internal" },
          { type: "dns", value: "b.svc.internal" },
        ],
      }),
    );
    expect(extra.at(-1)).toMatch(/^ACME {7}does not vouch for this certificate: name b\.svc\.internal/);
    expect(originLines(review({ origin: null }))).toEqual([]);
  });
});

describe("the journal", () => {
  it("notes an approval's ACME origin in the entry's note, a field every journal reader accepts", () => {
    const dir = mkdtempSync(join(tmpdir(), "tca-origin-journal-"));
    try {
      const secret = randomBytes(32);
      const path = join(dir, "journal.jsonl");
      const note = originNote(acme(id("a.svc.internal")));
      expect(note).toBe("from ACME account acct-1, order order-1");
      expect(originNote(null)).toBeUndefined();
      new Journal(path, ed25519.getPublicKey(secret)).append(secret, {
        kind: "approval",
        requestId: "r1",
        tbsSha256: "a".repeat(64),
        decision: "approve",
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        note: note!,
      });
      // Read again from the file: chain, signature and schema checked.
      const again = new Journal(path, ed25519.getPublicKey(secret));
      expect(again.decisionOn("r1")).toMatchObject({ decision: "approve", note });
      expect(again.approvedRequestIds()).toEqual(["r1"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
