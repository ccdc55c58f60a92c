// What a custodian refuses to sign, checked on its derivation functions directly: CRLs that go
// backwards or drop a serial (docs/architecture.md §3.9), and leaf requests whose notBefore is backdated
// (§3.2).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { testCaKey } from "../x509/helpers.ts";
import { buildRootTbs } from "../../src/x509/root.ts";
import { assembleCertificate } from "../../src/x509/assemble.ts";
import { randomSerial } from "../../src/x509/serial.ts";
import { loadCaConfig } from "../../src/config/load.ts";
import { Journal } from "../../src/custodian/journal.ts";
import { crlTbsDeriver, type PublishedCrl } from "../../src/custodian/crl-check.ts";
import { sha256Hex } from "../../src/custodian/leaf-check.ts";
import type { SigningTask } from "../../src/protocol/signing-messages.ts";
import { ROOT } from "../helpers/processes.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const config = loadCaConfig(join(ROOT, "ca-config/ca.yaml"));
const ca = testCaKey();
const now = new Date();
const rootTbs = buildRootTbs({
  subject: config.config.ca.subject,
  caPublicKey: ca.raw,
  serial: randomSerial(),
  notBefore: now,
  notAfter: new Date(now.getTime() + 365 * 86_400_000),
});
const caCert = assembleCertificate(rootTbs, ca.sign(rootTbs));
const secret = randomBytes(32);

function setup(published?: PublishedCrl) {
  const d = mkdtempSync(join(tmpdir(), "tca-checks-"));
  dirs.push(d);
  const journal = new Journal(join(d, "journal.jsonl"), ed25519.getPublicKey(secret));
  return { journal, derive: crlTbsDeriver(config, caCert, journal, async () => published) };
}
const S1 = "0a0b0c0d0e0f10111213";
const S2 = "1a1b1c1d1e1f20212223";
function crlJob(
  id: string,
  number: number,
  serials: string[],
  o: { thisUpdate?: Date; hours?: number } = {},
): SigningTask {
  const thisUpdate = new Date(Math.floor((o.thisUpdate ?? new Date()).getTime() / 1000) * 1000);
  return {
    id,
    kind: "crl",
    subjectRef: `crl-${number}`,
    attempt: 0,
    tbs: "",
    params: {
      crlNumber: String(number),
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: new Date(thisUpdate.getTime() + (o.hours ?? 24) * 3_600_000).toISOString(),
      entries: serials.map((serial) => ({
        serial,
        revokedAt: thisUpdate.toISOString(),
        reason: "keyCompromise",
      })),
    },
    signingPackage: { attempt: 0, signers: [], commitments: [], formedAt: "" },
  };
}
const refusal = async (p: Promise<unknown>) =>
  p.then(
    () => "signed",
    (e: Error) => e.message,
  );

describe("CRL checks", () => {
  it("signs a growing CRL with a higher number", async () => {
    const { journal, derive } = setup({ number: 1n, serials: [S1] });
    // One thisUpdate for both derivations (they may straddle a second boundary otherwise).
    const at = new Date();
    const tbs = await derive(crlJob("j2", 2, [S1, S2], { thisUpdate: at }));
    expect(tbs.length).toBeGreaterThan(50);
    journal.append(secret, {
      kind: "crl",
      requestId: "crl-2",
      tbsSha256: sha256Hex(tbs),
      crlNumber: "2",
      serials: [S1, S2],
      jobId: "j2",
    });
    // A re-formed attempt of the same job carries the same bytes: allowed.
    expect(await refusal(Promise.resolve(derive(crlJob("j2", 2, [S1, S2], { thisUpdate: at }))))).toBe(
      "signed",
    );
  });

  it.each([
    [
      "a number that does not increase on the published CRL",
      { number: 3n, serials: [] },
      crlJob("j", 3, []),
      /does not increase on 3/,
    ],
    [
      "a dropped serial of the published CRL",
      { number: 1n, serials: [S1] },
      crlJob("j", 2, [S2]),
      new RegExp(`drops revoked serial ${S1}`),
    ],
    [
      "a thisUpdate far from the clock",
      undefined,
      crlJob("j", 1, [], { thisUpdate: new Date(Date.now() - 3_600_000) }),
      /not within 5 minutes/,
    ],
    ["a validity over the cap", undefined, crlJob("j", 1, [], { hours: 24 * 30 }), /outside 0-168 h/],
  ])("refuses %s", async (_what, published, job, reason) => {
    const { derive } = setup(published);
    expect(await refusal(Promise.resolve(derive(job)))).toMatch(reason);
  });

  it("refuses going below or dropping from the last CRL it signed itself, even if the coordinator serves none", async () => {
    const { journal, derive } = setup(undefined);
    journal.append(secret, {
      kind: "crl",
      requestId: "crl-5",
      tbsSha256: "0".repeat(64),
      crlNumber: "5",
      serials: [S1],
      jobId: "j5",
    });
    expect(await refusal(Promise.resolve(derive(crlJob("j6", 5, [S1]))))).toMatch(/does not increase on 5/);
    expect(await refusal(Promise.resolve(derive(crlJob("j6", 6, [S2]))))).toMatch(
      new RegExp(`drops revoked serial ${S1}`),
    );
    expect(await refusal(Promise.resolve(derive(crlJob("j6", 6, [S1, S2]))))).toBe("signed");
  });
});

describe("leaf checks at approval", () => {
  it("bounds the coordinator's notBefore: not in the future, not more than a day back", async () => {
    const { execFileSync } = await import("node:child_process");
    const { deriveLeafTbs } = await import("../../src/custodian/leaf-check.ts");
    const d = mkdtempSync(join(tmpdir(), "tca-leaf-"));
    dirs.push(d);
    execFileSync(
      "openssl",
      [
        "req",
        "-new",
        "-newkey",
        "ed25519",
        "-nodes",
        "-keyout",
        join(d, "k"),
        "-out",
        join(d, "csr"),
        "-outform",
        "DER",
        "-subj",
        "/CN=a.example.internal",
        "-addext",
        "subjectAltName=DNS:a.example.internal",
      ],
      { stdio: "pipe" },
    );
    const csr = (await import("node:fs")).readFileSync(join(d, "csr")).toString("base64");
    const at = (offsetMs: number) => {
      const nb = new Date(Math.floor((Date.now() + offsetMs) / 1000) * 1000);
      return {
        requestId: "00000000-0000-4000-8000-000000000000",
        requester: "dev",
        profile: "server",
        csr,
        serial: "0a0b0c0d0e0f10111213",
        notBefore: nb.toISOString(),
        notAfter: new Date(nb.getTime() + 24 * 3_600_000).toISOString(),
      };
    };
    const attempt = (offsetMs: number) => {
      try {
        deriveLeafTbs(config, caCert, at(offsetMs), { checkNotBefore: true });
        return "ok";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(attempt(-3_600_000)).toBe("ok");
    expect(attempt(-25 * 3_600_000)).toMatch(/more than 24 hours in the past/);
    expect(attempt(10 * 60_000)).toMatch(/lies in the future/);
  });
});
