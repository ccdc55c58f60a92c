// docs/architecture.md §3.2, §3.7: a wrong share is named and routed around; a coordinator that changes the
// TBS after approval gets no share; a signer SIGKILLed between commitment and share does not stall
// issuance and its commitment is never used again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, ROOT } from "../helpers/processes.ts";
import { startRewritingProxy, rewriteJson } from "../helpers/proxy.ts";
import {
  startDevCa,
  custodianCli,
  submitCsr,
  makeCsr,
  KEY_ARGS,
  requestView,
  type DevCa,
} from "../helpers/dev-ca.ts";
import { loadCaConfig } from "../../src/config/load.ts";
import { buildLeafTbs } from "../../src/x509/leaf.ts";
import { fromPem } from "../../src/x509/der.ts";
import { randomSerial } from "../../src/x509/serial.ts";
import { bytesToHex, hexToBytes } from "../../src/threshold/encoding.ts";

const sb = new Sandbox();
const servers: Server[] = [];
let ca: DevCa;
let work: string;
beforeAll(async () => {
  ca = await startDevCa(sb, { args: ["--share-timeout", "3"] });
  work = sb.tempDir();
}, 120_000);
afterAll(async () => {
  for (const s of servers) s.close();
  await sb.cleanup();
});

interface View {
  status: string;
  serial: string;
  signing: {
    culprits: { custodian: string; reason: string }[];
    events: { kind: string; custodian?: string; detail?: string }[];
  } | null;
}
const view = (id: string) => requestView(ca, id) as unknown as Promise<View>;

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function newRequest(name: string, sans?: string): Promise<string> {
  const host = `${name}.example.internal`;
  const csr = makeCsr(work, name, {
    newkey: KEY_ARGS["p-256"]!,
    subject: `/CN=${host}`,
    sans: sans ?? `DNS:${host}`,
  });
  const res = await submitCsr(ca, csr.csrPem);
  expect(res.status).toBe(202);
  return res.body.id as string;
}

function rogue(mode: "tamper-share" | "stall-before-share", name: string, id: string) {
  const h = ca.home(name);
  return sb.node([
    "--import",
    "tsx",
    join(ROOT, "test/fixtures/rogue-custodian.ts"),
    mode,
    h.home,
    h.passphraseFile,
    id,
  ]);
}

describe("signing faults", () => {
  it("a custodian posting a wrong share is named in the record, and the certificate issues through others", async () => {
    const id = await newRequest("culprit");
    const carol = rogue("tamper-share", "carol", id);
    await carol.waitFor(/APPROVED/);
    const alice = custodianCli(sb, ca, "alice", ["approve", id, "--yes"]);
    const named = await waitFor(async () => {
      const v = await view(id);
      return v.signing?.culprits.find((c) => c.custodian === "carol");
    }, "carol to be named");
    expect(named.reason).toMatch(/invalid signature share/);
    const bob = custodianCli(sb, ca, "bob", ["approve", id, "--yes"]);
    expect(await bob.exited, bob.stderr).toBe(0);
    expect(await alice.exited, alice.stderr).toBe(0);
    const v = await view(id);
    expect(v.status).toBe("issued");
    expect(v.signing!.culprits).toEqual([
      { custodian: "carol", reason: expect.stringMatching(/invalid signature share/) },
    ]);
    expect(v.signing!.events.some((e) => e.kind === "bad-share" && e.custodian === "carol")).toBe(true);
    expect(
      (
        await fetch(`${ca.url}/api/v1/requests/${id}/certificate`, {
          headers: { authorization: `Bearer ${ca.token}` },
        })
      ).status,
    ).toBe(200);
  });

  it("a signer SIGKILLed after its commitment does not stall issuance; its commitment is never reused", async () => {
    const id = await newRequest("killed");
    const carol = rogue("stall-before-share", "carol", id);
    await carol.waitFor(/APPROVED/);
    const alice = custodianCli(sb, ca, "alice", ["approve", id, "--yes"]);
    await carol.waitFor(/HOLDING/);
    carol.kill("SIGKILL");
    await carol.exited;
    // The session re-forms after the share timeout with fresh commitments from online approvers.
    await waitFor(
      async () => ((await view(id)).signing?.events.some((e) => e.kind === "timeout") ? true : undefined),
      "a timeout",
    );
    const bob = custodianCli(sb, ca, "bob", ["approve", id, "--yes"]);
    expect(await bob.exited, bob.stderr).toBe(0);
    expect(await alice.exited, alice.stderr).toBe(0);
    const v = await view(id);
    expect(v.status).toBe("issued");
    const packages = v.signing!.events.filter((e) => e.kind === "package").map((e) => e.detail!);
    expect(packages.length).toBeGreaterThanOrEqual(2);
    expect(packages[0]).toMatch(/attempt 0: signers .*carol/);
    const firstCommitments = packages[0]!.split("commitments ")[1]!.split(", ");
    for (const later of packages.slice(1)) {
      expect(later).not.toMatch(/carol/);
      for (const c of firstCommitments) expect(later).not.toContain(c);
    }
    expect(v.signing!.events.find((e) => e.kind === "timeout")!.detail).toMatch(/no share from carol/);
  });
});

describe("a coordinator that changes the TBS after approval gets no share", () => {
  it("refuses changed SAN, key, validity, extension and serial, and says why", async () => {
    const config = loadCaConfig(join(ca.dir, "ca-config.yaml")).config;
    const caDer = fromPem(readFileSync(ca.rootPath, "utf8"), ["CERTIFICATE"]);
    const other = makeCsr(work, "other-key", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=tamper-key.example.internal",
      sans: "DNS:tamper-key.example.internal",
    });
    const otherSan = makeCsr(work, "other-san", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=tamper-san.example.internal",
      sans: "DNS:evil.example.internal",
    });
    type Params = { csr: string; serial: string; notBefore: string; notAfter: string; profile: string };
    const rebuild = (p: Params, profile = config.profiles[p.profile]!) =>
      bytesToHex(
        buildLeafTbs({
          csr: new Uint8Array(Buffer.from(p.csr, "base64")),
          profile,
          caCertDer: caDer,
          serial: hexToBytes(p.serial),
          notBefore: new Date(p.notBefore),
          notAfter: new Date(p.notAfter),
          publicUrl: config.ca.publicUrl,
        }),
      );
    const der = (pem: string) => Buffer.from(fromPem(pem, ["CERTIFICATE REQUEST"])).toString("base64");
    const variants: Record<
      string,
      { mutate: (p: Params) => { params: Params; tbs: string }; reason: RegExp }
    > = {
      san: {
        mutate: (p) => ({
          params: { ...p, csr: der(otherSan.csrPem) },
          tbs: rebuild({ ...p, csr: der(otherSan.csrPem) }),
        }),
        reason: /no unexpired approval/,
      },
      key: {
        mutate: (p) => ({
          params: { ...p, csr: der(other.csrPem) },
          tbs: rebuild({ ...p, csr: der(other.csrPem) }),
        }),
        reason: /no unexpired approval/,
      },
      validity: {
        mutate: (p) => {
          const q = { ...p, notAfter: new Date(Date.parse(p.notAfter) + 3_600_000).toISOString() };
          return { params: q, tbs: rebuild(q) };
        },
        reason: /no unexpired approval/,
      },
      extension: {
        mutate: (p) => ({ params: p, tbs: rebuild(p, config.profiles.client!) }),
        reason: /differs from the one this custodian derived/,
      },
      serial: {
        mutate: (p) => {
          const q = { ...p, serial: bytesToHex(randomSerial()) };
          return { params: q, tbs: rebuild(q) };
        },
        reason: /no unexpired approval/,
      },
    };
    const byId = new Map<string, string>();
    for (const name of Object.keys(variants)) byId.set(await newRequest(`tamper-${name}`), name);
    const ids = [...byId.keys()];

    // A man-in-the-middle coordinator for alice only: it rewrites the signing jobs she is shown.
    const { url: proxyUrl, server: proxy } = await startRewritingProxy(
      ca.url,
      rewriteJson<{ tasks: { subjectRef: string; tbs: string; params: Params }[] }>(
        "/api/v1/custodians/exchange",
        (json) => {
          for (const job of json.tasks) {
            const v = variants[byId.get(job.subjectRef) ?? ""];
            if (!v) continue;
            const m = v.mutate(job.params);
            job.params = m.params;
            job.tbs = m.tbs;
          }
        },
        "POST",
      ),
    );
    servers.push(proxy);

    // bob approves and stays online to sign, so signing packages form; alice sees them through
    // the tampering proxy.
    const bob = custodianCli(sb, ca, "bob", ["approve", ...ids, "--yes"]);
    await bob.waitFor(new RegExp(`${ids.at(-1)}: approved`));
    const alice = custodianCli(sb, ca, "alice", ["approve", ...ids, "--yes", "--coordinator", proxyUrl]);
    expect(await alice.exited).toBe(3);
    bob.kill("SIGTERM");
    await bob.exited;
    for (const [id, name] of byId) {
      const v = await view(id);
      expect(v.status, name).not.toBe("issued");
      const refusal = v.signing!.culprits.find((c) => c.custodian === "alice");
      expect(refusal?.reason, name).toMatch(variants[name]!.reason);
      expect(alice.stderr, name).toMatch(
        new RegExp(`${id}: I refused to sign: .*${variants[name]!.reason.source}`),
      );
      expect(
        v.signing!.events.filter((e) => e.kind === "share" && e.custodian === "alice"),
        name,
      ).toEqual([]);
    }
  });
});
