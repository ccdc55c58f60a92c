// ca-config is the CA's declared truth: the example loads, and mistakes are refused with the path
// of the offending field, before any node acts on them.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCaConfig, loadCaConfig, canonicalJson } from "../../src/config/load.ts";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { ROOT } from "../helpers/processes.ts";

const example = readFileSync(join(ROOT, "ca-config/ca.yaml"), "utf8");
const refused = (text: string) => {
  try {
    parseCaConfig(text);
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as Error).message}`;
  }
  return "accepted";
};

describe("ca-config", () => {
  it("an exclusive grant needs explicit allowedNames", () => {
    const withGrant = (names: string) =>
      example.replace(
        "requesters:\n",
        `requesters:\n  - name: coordinator\n    tokenSha256: ${"a".repeat(64)}\n    profiles: [server]\n    allowedNames: ${names}\n    exclusive: true\n`,
      );
    expect(refused(withGrant('["*"]'))).toMatch(/exclusive grant needs explicit allowedNames/);
    expect(refused(withGrant('["ca.example.internal"]'))).toBe("accepted");
  });
  it("the example CA is 2-of-3 with server, client and intermediate profiles", () => {
    const { config, digest } = loadCaConfig(join(ROOT, "ca-config/ca.yaml"));
    expect(config.threshold).toBe(2);
    expect(config.custodians.map((c) => c.name)).toEqual(["alice", "bob", "carol"]);
    expect(Object.keys(config.profiles).sort()).toEqual([
      "client",
      "intermediate",
      "ocsp-responder",
      "server",
    ]);
    expect(config.profiles.intermediate!.ca).toBe(true);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("ocspSigning goes to requester ocsp alone, never to a CA profile, never through ACME (docs/ocsp.md)", () => {
    type Doc = {
      requesters: { name: string; profiles: string[] }[];
      profiles: Record<string, { extKeyUsage?: string[]; ca?: boolean }>;
      acme?: unknown;
    };
    const edited = (edit: (d: Doc) => void) => {
      const d = parseYaml(example) as Doc;
      edit(d);
      return refused(toYaml(d));
    };
    const requester = (d: Doc, name: string) => d.requesters.find((r) => r.name === name)!;
    expect(edited(() => undefined)).toBe("accepted");
    // Another requester granted the responder profile, or any profile with ocspSigning.
    expect(edited((d) => requester(d, "dev").profiles.push("ocsp-responder"))).toMatch(
      /requester dev is granted ocsp-responder, with extKeyUsage ocspSigning.*"ocsp" alone/,
    );
    expect(
      edited((d) => {
        d.profiles.server!.extKeyUsage = ["serverAuth", "ocspSigning"];
      }),
    ).toMatch(/requester dev is granted server, with extKeyUsage ocspSigning/);
    // A CA profile with ocspSigning (granted to ocsp, so only that rule speaks).
    expect(
      edited((d) => {
        d.profiles.intermediate!.extKeyUsage = ["ocspSigning"];
        requester(d, "ocsp").profiles.push("intermediate");
      }),
    ).toMatch(
      /profiles\.intermediate\.extKeyUsage: profile intermediate is a CA profile with extKeyUsage ocspSigning/,
    );
    // ACME: no ocspSigning profile among acme.profiles, and open registration not under ocsp.
    expect(edited((d) => (d.acme = { profiles: ["server"], openRegistration: { requester: "dev" } }))).toBe(
      "accepted",
    );
    expect(edited((d) => (d.acme = { profiles: ["server", "ocsp-responder"] }))).toMatch(
      /acme\.profiles\.1: acme\.profiles names profile ocsp-responder, with extKeyUsage ocspSigning/,
    );
    expect(
      edited((d) => {
        requester(d, "ocsp").profiles.push("server");
        d.acme = { profiles: ["server"], openRegistration: { requester: "ocsp" } };
      }),
    ).toMatch(
      /acme\.openRegistration names requester ocsp, which is granted a profile with extKeyUsage ocspSigning/,
    );
  });

  it("the digest ignores layout and key order but not content", () => {
    const a = parseCaConfig(example).digest;
    expect(parseCaConfig(`# a comment\n${example}`).digest).toBe(a);
    expect(
      parseCaConfig(example.replace("rootValidityDays: 3650", "rootValidityDays: 3651")).digest,
    ).not.toBe(a);
    expect(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
  });

  it.each([
    [
      "a threshold above the roster size",
      example.replace("threshold: 2", "threshold: 4"),
      /threshold: threshold 4 exceeds the 3 custodians/,
    ],
    ["a threshold of 1", example.replace("threshold: 2", "threshold: 1"), /threshold/],
    ["an unknown key", example.replace("threshold: 2", "threshold: 2\nthreshhold: 3"), /Unrecognized key/],
    ["a duplicate custodian", example.replace("- name: bob", "- name: alice"), /duplicate custodian alice/],
    [
      "an ocspNoCheck profile of more than 7 days",
      example.replace(/(ocsp-responder:[\s\S]*?maxValidityHours:) 168/, "$1 169"),
      /maxValidityHours: ocspNoCheck certificates .* at most 168/,
    ],
    [
      "an ocspNoCheck profile without ocspSigning",
      example.replace("extKeyUsage: [ocspSigning]", "extKeyUsage: [serverAuth]"),
      /ocspNoCheck: ocspNoCheck needs extKeyUsage \[ocspSigning\]/,
    ],
    [
      "a key that is not 32 bytes",
      example.replace(/signingKey: \S+/, "signingKey: AAAA"),
      /custodians\.0\.signingKey: must encode 32 bytes/,
    ],
    [
      "a grant of an unknown profile",
      example.replace("profiles: [server, client]", "profiles: [server, nope]"),
      /unknown profile nope/,
    ],
    [
      "a default validity above the cap",
      example.replace("defaultValidityHours: 720", "defaultValidityHours: 9999"),
      /exceeds maxValidityHours/,
    ],
    ["YAML that does not parse", "version: [1", /CONFIG_SYNTAX/],
  ])("refuses %s", (_what, text, message) => {
    expect(refused(text)).toMatch(message);
  });
});
