// The coordinator's own certificate in auto mode (src/coordinator/self-tls.ts), on an in-process CA
// with a clock the test moves: requested once the root exists, installed once issued, kept until two
// thirds of its lifetime have passed, then renewed with a new key; saved and reused across restarts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import {
  approval,
  exchangeUntil,
  newCoordinator,
  readyCa,
  type InProcessCa,
} from "../helpers/in-process-ca.ts";
import {
  defaultTlsDir,
  defaultTlsNames,
  renewAt,
  SelfTls,
  selfRequester,
} from "../../src/coordinator/self-tls.ts";
import type { KeyAndChain } from "../../src/coordinator/http/tls.ts";
import type { Requester } from "../../src/config/schema.ts";

const NAMES = ["localhost", "127.0.0.1", "::1"];
const REQUESTER: Requester = {
  name: "coordinator",
  tokenSha256: "0".repeat(64),
  profiles: ["server"],
  allowedNames: NAMES,
  exclusive: false,
};

let ca: InProcessCa;
let dir: string;
beforeAll(async () => {
  ca = await readyCa();
  dir = mkdtempSync(join(tmpdir(), "tca-self-tls-"));
});
afterAll(async () => {
  await ca?.close();
  rmSync(dir, { recursive: true, force: true });
});

function manager(now: () => number, installed: KeyAndChain[]): SelfTls {
  return new SelfTls({
    requests: ca.services.requests,
    caCertificate: ca.services.caCertificate,
    requester: REQUESTER,
    profile: "server",
    names: NAMES,
    dir,
    log: pino({ level: "silent" }),
    install: (m) => installed.push(m),
    now,
  });
}

/** Two custodians approve the pending request; the exchange runs until it is issued. */
async function issue(id: string): Promise<void> {
  const v = await ca.services.requests.view(id);
  expect(v.requester).toBe("coordinator");
  for (const name of ["alice", "bob"]) await ca.services.requests.decide(id, approval(ca, name, v));
  await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
}

const serialOf = (m: KeyAndChain) => new X509Certificate(m.chainPem).serialNumber;

describe("self-issued TLS certificate", () => {
  it("waits for the root, then requests, installs, keeps until 2/3 of its lifetime, and renews with a new key", async () => {
    // No root yet: nothing is requested.
    const empty = await newCoordinator();
    const none: KeyAndChain[] = [];
    const early = new SelfTls({
      requests: empty.services.requests,
      caCertificate: empty.services.caCertificate,
      requester: REQUESTER,
      profile: "server",
      names: NAMES,
      dir: join(dir, "unused"),
      log: pino({ level: "silent" }),
      install: (m) => none.push(m),
    });
    await early.tick();
    expect(early.pendingRequest).toBeUndefined();
    expect(none).toHaveLength(0);
    await empty.close();

    let now = Date.now();
    const installed: KeyAndChain[] = [];
    const m = manager(() => now, installed);
    await m.tick();
    const first = m.pendingRequest!;
    expect(first).toBeDefined();
    await m.tick(); // still pending: nothing installed, nothing new requested
    expect(m.pendingRequest).toBe(first);
    expect(installed).toHaveLength(0);
    await issue(first);
    await m.tick();
    expect(installed).toHaveLength(1);
    expect(m.pendingRequest).toBeUndefined();
    const cur = m.current!;
    expect(serialOf(installed[0]!)).toBe(cur.serial);
    expect(statSync(join(dir, "key.pem")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, "chain.pem"), "utf8")).toBe(installed[0]!.chainPem);

    // Just before two thirds of the lifetime: kept.
    const due = renewAt(cur.notBefore, cur.notAfter);
    now = due - 1_000;
    await m.tick();
    expect(m.pendingRequest).toBeUndefined();

    // A restart before that: the saved certificate is installed again, nothing requested.
    const again: KeyAndChain[] = [];
    const restarted = manager(() => now, again);
    await restarted.tick();
    expect(again).toHaveLength(1);
    expect(serialOf(again[0]!)).toBe(cur.serial);
    expect(restarted.pendingRequest).toBeUndefined();

    // Past two thirds: a renewal with a new key, installed without a restart.
    now = due + 1_000;
    await m.tick();
    const second = m.pendingRequest!;
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(installed).toHaveLength(1); // the old one is served until the new one is issued
    await issue(second);
    await m.tick();
    expect(installed).toHaveLength(2);
    expect(serialOf(installed[1]!)).not.toBe(cur.serial);
    expect(installed[1]!.keyPem).not.toBe(installed[0]!.keyPem);
    expect(m.current!.serial).toBe(serialOf(installed[1]!));
  });

  it("renews at two thirds of the lifetime", () => {
    const nb = new Date("2026-01-01T00:00:00Z");
    const na = new Date("2026-01-31T00:00:00Z"); // 30 days
    expect(new Date(renewAt(nb, na)).toISOString()).toBe("2026-01-21T00:00:00.000Z");
  });

  it("defaults: names, directory, and the requester ca-config must declare", () => {
    expect(defaultTlsNames("127.0.0.1")).toEqual(NAMES);
    expect(defaultTlsNames("0.0.0.0")).toEqual(NAMES);
    expect(defaultTlsNames("::")).toEqual(NAMES);
    expect(defaultTlsNames("10.1.2.3")).toEqual([...NAMES, "10.1.2.3"]);
    expect(defaultTlsDir("/var/lib/tca/tca.db")).toBe("/var/lib/tca/tca-tls");
    expect(defaultTlsDir("sqlite:/x/y.sqlite")).toBe("/x/y-tls");
    expect(defaultTlsDir("postgres://db/tca")).toBe(join(process.cwd(), "tca-tls"));
    // ca.yaml has no "coordinator" requester: auto mode says what to add.
    expect(() => selfRequester(ca.config.config, "server", NAMES)).toThrow(/requester named "coordinator"/);
    const withIt = {
      ...ca.config.config,
      requesters: [...ca.config.config.requesters, { ...REQUESTER, allowedNames: ["localhost"] }],
    };
    expect(() => selfRequester(withIt, "server", NAMES)).toThrow(/do not cover 127\.0\.0\.1/);
    expect(selfRequester(withIt, "server", ["localhost"]).name).toBe("coordinator");
  });

  it("refuses names another requester may also ask for unless the grant is exclusive (loopback exempt)", () => {
    const shared = {
      ...ca.config.config,
      requesters: [
        ...ca.config.config.requesters,
        { ...REQUESTER, allowedNames: ["ca.example.internal", "localhost"] },
        { ...REQUESTER, name: "deploy", allowedNames: ["*.example.internal"] },
      ],
    };
    expect(() => selfRequester(shared, "server", ["ca.example.internal"])).toThrow(/exclusive: true/);
    // Loopback names (tca dev) reach only this host.
    expect(selfRequester(shared, "server", ["localhost"]).name).toBe("coordinator");
    const exclusive = {
      ...shared,
      requesters: shared.requesters.map((r) => (r.name === "coordinator" ? { ...r, exclusive: true } : r)),
    };
    expect(selfRequester(exclusive, "server", ["ca.example.internal"]).name).toBe("coordinator");
  });
});
