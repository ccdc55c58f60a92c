// The agent's local policy: each check of a rule, and that it judges what the custodian itself
// derived (the TBS), not labels the coordinator attaches to the request.
import { describe, expect, it } from "vitest";
import { evaluatePolicy, PolicySchema } from "../../src/custodian/policy.ts";
import type { Review } from "../../src/custodian/session.ts";

const policy = PolicySchema.parse({
  version: 1,
  autoApprove: [
    {
      name: "svc",
      profiles: ["server"],
      requesters: ["ci"],
      names: ["*.svc.internal"],
      maxValidityHours: 720,
      keyTypes: ["ec-p256", "ed25519"],
    },
  ],
});

function review(
  o: {
    profile?: string;
    requester?: string;
    sans?: string[];
    cn?: string;
    cns?: string[];
    hours?: number;
    keyType?: string;
    bits?: number;
    labelled?: string;
    problem?: string;
  } = {},
): Review {
  return {
    request: {
      profile: o.profile ?? "server",
      requester: o.requester ?? "ci",
      keyType: o.labelled ?? o.keyType ?? "ec-p256",
    },
    tbs: {
      subject: `CN=${o.cn ?? "a.svc.internal"}`,
      sans: (o.sans ?? ["a.svc.internal"]).map((value) => ({ type: "dns", value })),
      validityHours: o.hours ?? 720,
      publicKey: { type: o.keyType ?? "ec-p256", bits: o.bits ?? 256, sha256: "00" },
    },
    commonNames: o.cns ?? [o.cn ?? "a.svc.internal"],
    ...(o.problem ? { problem: o.problem } : {}),
  } as unknown as Review;
}

describe("evaluatePolicy", () => {
  it("approves a request every check of a rule accepts, naming the rule", () => {
    expect(evaluatePolicy(policy, review())).toEqual({ approve: true, reason: 'matches rule "svc"' });
  });
  it.each([
    ["profile", review({ profile: "client" }), /profile client/],
    ["requester", review({ requester: "someone" }), /requester someone/],
    ["SAN", review({ sans: ["a.svc.internal", "evil.example.com"] }), /name evil\.example\.com/],
    ["CN", review({ cn: "evil.example.com" }), /name evil\.example\.com/],
    ["validity", review({ hours: 721 }), /validity 721 h exceeds 720/],
    ["key type", review({ keyType: "rsa", bits: 2048 }), /key type rsa-2048/],
  ])("leaves a request with another %s for a person", (_what, r, reason) => {
    const d = evaluatePolicy(policy, r);
    expect(d.approve).toBe(false);
    expect(d.reason).toMatch(/^waiting for a person: /);
    expect(d.reason).toMatch(reason);
  });
  it("judges each SAN by its kind: a URI or email that merely ends like a DNS pattern does not match", () => {
    const withSans = (extra: { type: string; value: string }) => {
      const r = review();
      (r.tbs as { sans: { type: string; value: string }[] }).sans.push(extra);
      return r;
    };
    expect(
      evaluatePolicy(policy, withSans({ type: "uri", value: "https://evil.example/?.svc.internal" })).approve,
    ).toBe(false);
    expect(evaluatePolicy(policy, withSans({ type: "email", value: "x@a.svc.internal" })).approve).toBe(
      false,
    );
    expect(evaluatePolicy(policy, withSans({ type: "dns", value: "b.svc.internal" })).approve).toBe(true);
  });

  it("checks every CN, not only the first", () => {
    expect(evaluatePolicy(policy, review({ cns: ["a.svc.internal", "evil.example.com"] })).approve).toBe(
      false,
    );
  });
  it("judges the key the custodian read from the CSR, not the coordinator's label", () => {
    expect(evaluatePolicy(policy, review({ keyType: "rsa", bits: 1024, labelled: "ed25519" })).approve).toBe(
      false,
    );
  });
  it("never approves what the custodian could not re-derive", () => {
    expect(evaluatePolicy(policy, review({ problem: "the coordinator's TBS differs" }))).toEqual({
      approve: false,
      reason: "not approvable: the coordinator's TBS differs",
    });
  });
});
