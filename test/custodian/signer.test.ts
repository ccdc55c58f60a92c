// DESIGN §3.6 at the custodian: a coordinator that sends two signing packages naming one commitment
// gets at most one share, and a package the custodian refuses still uses its commitment up. The
// "coordinator" here is a stand-in that serves whatever the test tells it to.
import { describe, expect, it } from "vitest";
import { inspect } from "node:util";
import type { z } from "zod";
import { identifierForName } from "../../src/threshold/suite.ts";
import { NoncePool } from "../../src/threshold/sign.ts";
import { SigningParticipant } from "../../src/custodian/signer.ts";
import type { CoordinatorClient } from "../../src/custodian/client.ts";
import type { SigningJobView } from "../../src/protocol/signing-messages.ts";
import { openEnvelope } from "../../src/protocol/envelope.ts";
import { ed25519 } from "@noble/curves/ed25519.js";
import { randomBytes } from "node:crypto";
import { inMemoryDkg } from "../helpers/dkg.ts";

class FakeCoordinator {
  posted: { type: string; body: Record<string, unknown> }[] = [];
  constructor(private readonly roster: Map<string, string>) {}
  async get<T>(): Promise<T> {
    throw new Error("not used");
  }
  async post<T>(_path: string, body: unknown, _schema: z.ZodType<T>): Promise<T> {
    const h = openEnvelope(body, this.roster);
    this.posted.push({ type: h.type, body: h.body as Record<string, unknown> });
    return {} as T;
  }
}

describe("SigningParticipant nonce discipline", () => {
  const keys = inMemoryDkg(["alice", "bob", "carol"], 2).map((p) => p.key);
  const aliceSecret = randomBytes(32);
  const roster = new Map([["alice", Buffer.from(ed25519.getPublicKey(aliceSecret)).toString("base64url")]]);
  const tbs = randomBytes(200).toString("hex");

  function setup(derive: (job: SigningJobView) => Uint8Array = () => Buffer.from(tbs, "hex")) {
    const fake = new FakeCoordinator(roster);
    const p = new SigningParticipant(
      fake as unknown as CoordinatorClient,
      { name: "alice", signingSecret: aliceSecret },
      {
        secret: keys[0]!.secret,
        public: keys[0]!.public,
        caKeyId: "a".repeat(64),
        threshold: 2,
        roster: ["alice", "bob", "carol"],
      },
      { leaf: derive },
    );
    const job = (attempt: number, pkg: SigningJobView["signingPackage"], body = tbs): SigningJobView => ({
      id: "job-1",
      kind: "leaf",
      subjectRef: "req-1",
      status: "signing",
      attempt,
      tbs: body,
      params: {},
      eligible: ["alice", "bob"],
      excluded: [],
      committed: [],
      signingPackage: pkg,
    });
    return { fake, p, job };
  }
  const bobCommitment = () => new NoncePool(keys[1]!.secret).commit();
  const pkg = (attempt: number, mine: ReturnType<NoncePool["commit"]>) => ({
    attempt,
    signers: ["alice", "bob"],
    commitments: [mine, bobCommitment()],
    formedAt: new Date().toISOString(),
  });

  it("two signing packages naming one commitment get one share", async () => {
    const { fake, p, job } = setup();
    expect(await p.step(job(0, null))).toBe("committed");
    const mine = fake.posted[0]!.body.commitment as ReturnType<NoncePool["commit"]>;
    expect(await p.step(job(0, pkg(0, mine)))).toBe("signed");
    // The coordinator tries again: a new attempt naming the same commitment, even with the same bytes.
    expect(await p.step(job(1, pkg(1, mine)))).toBe("idle");
    expect(await p.step(job(2, pkg(2, mine), randomBytes(200).toString("hex")))).toBe("idle");
    expect(fake.posted.filter((m) => m.type === "sign/share")).toHaveLength(1);
    expect(p.pendingNonces).toBe(0);
  });

  it("a refused package still uses its commitment up", async () => {
    const other = randomBytes(200).toString("hex");
    const { fake, p, job } = setup();
    await p.step(job(0, null));
    const mine = fake.posted[0]!.body.commitment as ReturnType<NoncePool["commit"]>;
    // First package proposes other bytes than the custodian derives: refused.
    expect(await p.step(job(0, pkg(0, mine), other))).toBe("refused");
    // Then the right bytes with the same commitment: the nonce is gone, no share.
    expect(await p.step(job(1, pkg(1, mine)))).toBe("idle");
    expect(fake.posted.filter((m) => m.type === "sign/share")).toHaveLength(0);
    expect(fake.posted.filter((m) => m.type === "sign/refusal")).toHaveLength(1);
  });

  it("never prints its key share", () => {
    const { p } = setup();
    const share = Buffer.from(keys[0]!.secret.signingShare).toString("hex");
    expect(inspect(p, { depth: 10 })).not.toContain(share);
    expect(JSON.stringify({ p })).not.toContain(share);
  });

  it("refuses a package naming an identifier outside the roster", async () => {
    const { fake, p, job } = setup();
    await p.step(job(0, null));
    const mine = fake.posted[0]!.body.commitment as ReturnType<NoncePool["commit"]>;
    const stranger = { ...bobCommitment(), identifier: identifierForName("mallory") };
    const bad = {
      attempt: 0,
      signers: ["alice", "mallory"],
      commitments: [mine, stranger],
      formedAt: new Date().toISOString(),
    };
    expect(await p.step(job(0, bad))).toBe("refused");
    expect(fake.posted.at(-1)!.body.reason).toMatch(/outside the roster/);
  });
});
