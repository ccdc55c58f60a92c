// docs/architecture.md §3.1 and §3.8: nothing in src/ reconstructs the group secret, uses a
// trusted dealer, or signs with a single key through the FROST suite. Reads every source file.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/processes.ts";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const FORBIDDEN: [string, RegExp][] = [
  ["combineSecret", /\bcombineSecret\b/],
  ["trustedDealer", /\btrustedDealer\b/],
  ["a single-key FROST sign()", /\b(suite|ed25519_FROST|frost)\s*\.\s*sign\s*\(/],
  ["sign pulled out of the FROST suite", /\{[^}]*\bsign\b[^}]*\}\s*=\s*(suite|ed25519_FROST)\b/],
  [
    "the suite's methods by index",
    /\b(suite|ed25519_FROST)\s*\[\s*["'`](sign|combineSecret|trustedDealer)["'`]\s*\]/,
  ],
];

describe("no key in one place", () => {
  const files = sources(join(ROOT, "src"));
  it("scans the whole source tree", () => {
    expect(files.length).toBeGreaterThan(20);
  });
  it.each(FORBIDDEN)("src/ never uses %s", (_what, re) => {
    const hits = files.filter((f) => re.test(readFileSync(f, "utf8")));
    expect(hits).toEqual([]);
  });
  it("the FROST suite is set up in one place only", () => {
    const hits = files.filter((f) => /ed25519_FROST/.test(readFileSync(f, "utf8")));
    expect(hits.map((f) => f.slice(ROOT.length))).toEqual(["src/threshold/suite.ts"]);
  });
  it("the scan would catch each form it looks for", () => {
    const samples = [
      "suite.combineSecret(shares, s)",
      "ed25519_FROST.trustedDealer(s)",
      "suite.sign(msg, key)",
      "const { sign } = suite;",
      'suite["sign"](m, k)',
    ];
    for (const s of samples)
      expect(
        FORBIDDEN.some(([, re]) => re.test(s)),
        s,
      ).toBe(true);
  });
});
