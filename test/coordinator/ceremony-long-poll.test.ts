// The key ceremony's stages by long-poll (docs/architecture.md §5): GET /api/v1/ceremonies/:id/messages
// ?type=T&wait=S answers as soon as every custodian has sent T or the ceremony has ended, so a
// custodian needs one request per stage and wakes the moment the stage completes. These tests wait
// with a long `wait`: a waiter that did not wake would hold the test until its timeout.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { loadCaConfig, type LoadedConfig } from "../../src/config/load.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import { readKeystore } from "../../src/custodian/keystore.ts";
import { sealEnvelope, type MessageType, type Signer } from "../../src/protocol/envelope.ts";
import { dkgPart1 } from "../../src/threshold/dkg.ts";
import { bytesToHex, round1ToWire } from "../../src/threshold/encoding.ts";
import { identifierForName } from "../../src/threshold/suite.ts";
import { generateHpkeKeyPair } from "../../src/protocol/hpke.ts";
import { ROOT, FIXTURE_PASSPHRASE, EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";
import { readTarget, signReadHeader } from "../../src/protocol/signed-read.ts";

const NAMES = ["alice", "bob", "carol"] as const;
let dir: string;
let config: LoadedConfig;
let coordinator: RunningCoordinator;
const signers = new Map<string, Signer>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tca-ceremony-poll-"));
  config = loadCaConfig(join(ROOT, "ca-config/ca.yaml"));
  for (const name of NAMES) {
    const ks = await readKeystore(
      join(ROOT, "test/fixtures/custodians", name, "keystore.json"),
      FIXTURE_PASSPHRASE,
    );
    signers.set(name, {
      name,
      signingSecret: new Uint8Array(Buffer.from(ks.identity.signingSecret, "base64url")),
    });
  }
});
afterAll(async () => {
  await coordinator?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh coordinator (one ceremony per CA) and a started ceremony. */
async function freshCeremony(): Promise<{ url: string; id: string }> {
  await coordinator?.close();
  coordinator = await startCoordinator({
    config,
    database: join(mkdtempSync(join(dir, "db-")), "coordinator.db"),
    port: 0,
    logger: pino({ level: "silent" }),
  });
  const res = await fetch(`${coordinator.url}/api/v1/ceremonies`, {
    method: "POST",
    headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
  });
  expect(res.status).toBe(201);
  return { url: coordinator.url, id: ((await res.json()) as { id: string }).id };
}

async function post(url: string, id: string, from: string, type: MessageType, body: unknown) {
  const env = sealEnvelope(signers.get(from)!, { type, recipient: "*", scope: id, caKeyId: null, body });
  const res = await fetch(`${url}/api/v1/ceremonies/${id}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(env),
  });
  expect(res.status, await res.clone().text()).toBe(202);
}

async function round1Body(name: string) {
  const { round1, state } = dkgPart1(identifierForName(name), config.config.threshold, NAMES.length);
  state.wipe();
  const hpke = await generateHpkeKeyPair();
  return {
    round1: round1ToWire(round1),
    hpkePublicKey: bytesToHex(hpke.publicKey),
    configDigest: config.digest,
  };
}

interface StageAnswer {
  status: string;
  failure: { reason: string; culprits: string[] } | null;
  complete: boolean;
  messages: unknown[];
}

/** A GET as custodian alice reads: with a signed read (docs/security-model.md). */
function signedGet(url: string): Promise<Response> {
  const u = new URL(url);
  return fetch(u, {
    headers: { authorization: signReadHeader(signers.get("alice")!, "GET", readTarget(u)) },
  });
}

function poll(url: string, id: string, type: string, wait: number): Promise<StageAnswer> {
  return signedGet(
    `${url}/api/v1/ceremonies/${id}/messages?type=${encodeURIComponent(type)}&wait=${wait}`,
  ).then(async (r) => {
    expect(r.status).toBe(200);
    return (await r.json()) as StageAnswer;
  });
}

/** Lets the coordinator's change feed (setImmediate) and any woken waiter run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

describe("ceremony stages by long-poll", () => {
  it("answers once the last custodian's message of that stage is stored, not before", async () => {
    const { url, id } = await freshCeremony();
    let answered: StageAnswer | undefined;
    const waiting = poll(url, id, "dkg/round1", 30).then((a) => (answered = a));
    await post(url, id, "alice", "dkg/round1", await round1Body("alice"));
    await post(url, id, "bob", "dkg/round1", await round1Body("bob"));
    await settle();
    expect(answered, "two of three is not a complete stage").toBeUndefined();
    await post(url, id, "carol", "dkg/round1", await round1Body("carol"));
    await waiting;
    expect(answered).toMatchObject({ status: "round1-ack", complete: true, failure: null });
    expect(answered!.messages).toHaveLength(3);
    // A stage that is already complete answers at once, with the envelopes exactly as posted.
    const again = await poll(url, id, "dkg/round1", 30);
    expect(again.messages).toEqual(answered!.messages);
  }, 20_000);

  it("answers at once with the failure when the ceremony fails while a custodian waits", async () => {
    const { url, id } = await freshCeremony();
    const waiting = poll(url, id, "dkg/round1", 30);
    await post(url, id, "bob", "dkg/abort", { reason: "announcement does not match", culprits: [] });
    const a = await waiting;
    expect(a.status).toBe("failed");
    expect(a.complete).toBe(false);
    expect(a.failure?.reason).toMatch(/^bob aborted: announcement does not match/);
  }, 20_000);

  it("without wait, or once the wait is over, answers with what it has", async () => {
    const { url, id } = await freshCeremony();
    await post(url, id, "alice", "dkg/round1", await round1Body("alice"));
    const now = await poll(url, id, "dkg/round1", 0);
    expect(now).toMatchObject({ status: "round1", complete: false });
    expect(now.messages).toHaveLength(1);
    const later = await poll(url, id, "dkg/round1", 1);
    expect(later.complete).toBe(false);
    expect(later.messages).toHaveLength(1);
  });

  it("refuses a wait outside 0-30 seconds and an unknown message type", async () => {
    const { url, id } = await freshCeremony();
    for (const q of ["type=dkg%2Fround1&wait=31", "type=dkg%2Fround1&wait=-1", "type=dkg%2Fround9"]) {
      const r = await signedGet(`${url}/api/v1/ceremonies/${id}/messages?${q}`);
      expect(r.status, q).toBe(400);
    }
  });
});
