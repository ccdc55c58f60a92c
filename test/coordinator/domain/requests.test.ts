// The request use cases on an in-memory store, no processes, no HTTP (test/helpers/in-process-ca.ts):
// intake checks that change nothing on bad input (docs/architecture.md §3.10), signed decisions (t approvals
// start a signing job, one rejection is final, a custodian decides once, a resent envelope is recorded
// once, an approval binds one TBS: docs/architecture.md §3.3), the review order (t preferred reviewers first,
// everyone after the fallback delay) and the long-poll on a request's state.
import { storedSerial } from "../../../src/x509/serial.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { requestState } from "../../../src/protocol/approval.ts";
import { REVIEW_FALLBACK_MS } from "../../../src/coordinator/requests/index.ts";
import { approval, makeCsr, newCoordinator, readyCa, type InProcessCa } from "../../helpers/in-process-ca.ts";

let ca: InProcessCa;
let csr: string;
beforeEach(async () => {
  ca = await readyCa(); // alice, bob, carol; any 2 sign
  csr = await makeCsr(["svc.example.internal"]);
});
afterEach(async () => {
  await ca.close();
});

const requests = () => ca.services.requests;
const dev = () => requests().requesterFor("dev");
const submit = async (names = ["svc.example.internal"]) =>
  requests().submit({
    requester: dev(),
    profile: "server",
    csr: names[0] === "svc.example.internal" ? csr : await makeCsr(names),
  });
const job = async (id: string) => {
  const r = await ca.services.store.getRequest(id);
  return r?.signingJob ? ca.services.store.getSigningJob(r.signingJob) : undefined;
};

describe("submit", () => {
  it("stores a pending request with a fresh serial and the TBS every custodian will re-derive", async () => {
    const v = await submit();
    expect(v).toMatchObject({
      status: "pending",
      profile: "server",
      requester: "dev",
      threshold: 2,
      missing: 2,
    });
    expect(v.sans).toEqual([{ type: "dns", value: "svc.example.internal" }]);
    expect(createHash("sha256").update(Buffer.from(v.tbs, "hex")).digest("hex")).toBe(v.tbsSha256);
    expect(v.serial).toMatch(/^([0-9a-f]{2}){9,20}$/);
    const other = await submit();
    expect(other.serial).not.toBe(v.serial);
    expect((await requests().list()).map((r) => r.id).sort()).toEqual([v.id, other.id].sort());
  });

  it("refuses bad submissions with a clear error, and stores nothing", async () => {
    const seq = ca.services.hooks.feed.seq;
    const cases: [Parameters<ReturnType<typeof requests>["submit"]>[0], string, RegExp][] = [
      [{ requester: dev(), profile: "nope", csr }, "BAD_REQUEST", /unknown profile "nope"/],
      [{ requester: dev(), profile: "intermediate", csr }, "FORBIDDEN", /not granted the "intermediate"/],
      [{ requester: dev(), profile: "server", csr: "not a CSR" }, "BAD_REQUEST", /./],
      [{ requester: dev(), profile: "server", csr: csr.replace(/A/g, "B") }, "BAD_REQUEST", /./],
      [
        { requester: dev(), profile: "server", csr: await makeCsr(["www.elsewhere.example"]) },
        "FORBIDDEN",
        /www\.elsewhere\.example/,
      ],
      [{ requester: dev(), profile: "server", csr, validityHours: 100_000 }, "UNPROCESSABLE", /./],
      [
        { requester: dev(), profile: "server", csr: await makeCsr(["svc.example.internal"], "a".repeat(65)) },
        "UNPROCESSABLE",
        /commonName \(CN\) has 65 characters; at most 64 .*ub-common-name/,
      ],
    ];
    for (const [s, code, message] of cases)
      await expect(requests().submit(s), `${s.profile} ${code}`).rejects.toMatchObject({
        code,
        message: expect.stringMatching(message),
      });
    expect(await requests().list()).toEqual([]);
    expect(ca.services.hooks.feed.seq).toBe(seq);
  });

  it("refuses every request while the CA has no root yet", async () => {
    const bare = await newCoordinator();
    try {
      await expect(
        bare.services.requests.submit({
          requester: bare.services.requests.requesterFor("dev"),
          profile: "server",
          csr,
        }),
      ).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/no root certificate/) });
      expect(await bare.services.requests.list()).toEqual([]);
    } finally {
      await bare.close();
    }
  });
});

describe("decisions", () => {
  it("t approvals start a signing job among the approvers; fewer do not", async () => {
    const v = await submit();
    const one = await requests().decide(v.id, approval(ca, "alice", v));
    expect(one).toMatchObject({ status: "pending", missing: 1, signing: null });
    expect(await job(v.id)).toBeUndefined();
    const two = await requests().decide(v.id, approval(ca, "bob", v));
    expect(two.status).toBe("signing");
    expect(two.missing).toBe(0);
    const j = await job(v.id);
    expect(j).toMatchObject({ kind: "leaf", subjectRef: v.id, status: "signing" });
    expect(j!.eligible.sort()).toEqual(["alice", "bob"]);
    expect(Buffer.from(j!.tbs).toString("hex")).toBe(v.tbs);
    expect(j!.params).toMatchObject({ requestId: v.id, serial: storedSerial(v.serial), profile: "server" });
    // A third approval joins the running job as a possible signer.
    await requests().decide(v.id, approval(ca, "carol", v));
    expect((await job(v.id))!.eligible.sort()).toEqual(["alice", "bob", "carol"]);
  });

  it("one rejection is final: it cancels the signing job and nothing is accepted after it", async () => {
    const v = await submit();
    await requests().decide(v.id, approval(ca, "alice", v));
    await requests().decide(v.id, approval(ca, "bob", v));
    const rejected = await requests().decide(
      v.id,
      approval(ca, "carol", v, "reject", { reason: "not a service we run" }),
    );
    expect(rejected.status).toBe("rejected");
    expect(rejected.rejection).toEqual({ by: "carol", reason: "not a service we run" });
    expect((await job(v.id))!.status).toBe("failed");
    const other = await submit();
    await requests().decide(other.id, approval(ca, "alice", other, "reject"));
    await expect(requests().decide(other.id, approval(ca, "bob", other))).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/already rejected/),
    });
    expect(await job(other.id)).toBeUndefined();
  });

  it("a custodian decides once: a second decision is a conflict and changes nothing", async () => {
    const v = await submit();
    await requests().decide(v.id, approval(ca, "alice", v));
    for (const decision of ["approve", "reject"] as const)
      await expect(requests().decide(v.id, approval(ca, "alice", v, decision))).rejects.toMatchObject({
        code: "CONFLICT",
        message: expect.stringMatching(/alice has already decided/),
      });
    const now = await requests().view(v.id);
    expect(now.status).toBe("pending");
    expect(now.approvals.map((a) => [a.custodian, a.decision])).toEqual([["alice", "approve"]]);
  });

  it("the very same envelope resent is answered as the first time and recorded once", async () => {
    const v = await submit();
    const env = approval(ca, "alice", v);
    const first = await requests().decide(v.id, env);
    const again = await requests().decide(v.id, structuredClone(env));
    expect(again).toEqual(first);
    expect(again.approvals).toHaveLength(1);
    // The exchange path (decideOpened) takes it the same way.
    await requests().decide(v.id, approval(ca, "bob", v));
    const signing = await requests().decide(v.id, env);
    expect(signing.status).toBe("signing");
    expect(signing.approvals).toHaveLength(2);
  });

  it("an approval binds one request's TBS: another TBS or request is a conflict", async () => {
    const v = await submit();
    const w = await submit();
    await expect(
      requests().decide(v.id, approval(ca, "alice", { id: v.id, tbsSha256: w.tbsSha256 })),
    ).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/another TBS/) });
    // Signed for request w, posted to request v: the envelope's scope does not match.
    await expect(requests().decide(v.id, approval(ca, "alice", w))).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    // A body naming w inside an envelope scoped to v.
    await expect(
      requests().decide(
        v.id,
        approval(ca, "alice", { id: v.id, tbsSha256: v.tbsSha256 }, "approve", { requestId: w.id }),
      ),
    ).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(
      requests().decide(v.id, approval(ca, "alice", v, "approve", { configDigest: "0".repeat(64) })),
    ).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/ca-config differs/) });
    await expect(
      requests().decide(
        v.id,
        approval(ca, "alice", v, "approve", { expiresAt: new Date(Date.now() - 1000).toISOString() }),
      ),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/expired/) });
    expect((await requests().view(v.id)).approvals).toEqual([]);
    // A forged signature (bob's name, alice's key) is refused before anything is read.
    const forged = approval(ca, "alice", v);
    const header = JSON.parse(Buffer.from(forged.payload, "base64url").toString()) as Record<string, unknown>;
    header.sender = "bob";
    await expect(
      requests().decide(v.id, {
        ...forged,
        payload: Buffer.from(JSON.stringify(header)).toString("base64url"),
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("an unknown request is not found", async () => {
    await expect(requests().view("00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(requests().view("../etc")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});

describe("review order", () => {
  it("shows each pending request to its t preferred reviewers first, to everyone after the fallback delay", async () => {
    const submitted = [];
    for (let i = 0; i < 8; i++) submitted.push((await submit()).id);
    const now = Date.now();
    const shownTo = new Map<string, string[]>(submitted.map((id) => [id, []]));
    const cursors = new Map<string, string>();
    for (const name of ca.names) {
      const page = await requests().reviewItems(name, null, 100, now);
      for (const item of page.items) shownTo.get(item.id)!.push(name);
      cursors.set(name, page.cursor);
      // The requests it was not shown yet become visible at the fallback time: its long-poll ends then.
      if (page.items.length < submitted.length) expect(page.wakeAt).toBeGreaterThan(now);
    }
    for (const [id, who] of shownTo) expect(who, id).toHaveLength(ca.threshold);
    // Spread: not every request goes to the same two custodians.
    expect(new Set([...shownTo.values()].map((w) => w.sort().join())).size).toBeGreaterThan(1);

    // Nothing new with the same cursor before the delay; after it, each sees the rest exactly once.
    const later = now + REVIEW_FALLBACK_MS + 1_000;
    for (const name of ca.names) {
      expect((await requests().reviewItems(name, cursors.get(name)!, 100, now)).items).toEqual([]);
      const rest = await requests().reviewItems(name, cursors.get(name)!, 100, later);
      const seenBefore = [...shownTo].filter(([, who]) => who.includes(name)).map(([id]) => id);
      expect(rest.items.map((i) => i.id).sort()).toEqual(
        submitted.filter((id) => !seenBefore.includes(id)).sort(),
      );
      expect((await requests().reviewItems(name, rest.cursor, 100, later)).items).toEqual([]);
      // Without a cursor, after the delay, everything pending, in intake order.
      expect((await requests().reviewItems(name, null, 100, later)).items.map((i) => i.id)).toHaveLength(8);
    }
  });

  it("a request that was decided leaves the review; a new one appears after the cursor", async () => {
    const v = await submit();
    const later = Date.now() + REVIEW_FALLBACK_MS + 1_000;
    const first = await requests().reviewItems("alice", null, 100, later);
    expect(first.items.map((i) => i.id)).toEqual([v.id]);
    await requests().decide(v.id, approval(ca, "carol", v, "reject"));
    expect((await requests().reviewItems("alice", null, 100, later)).items).toEqual([]);
    const w = await submit();
    const next = await requests().reviewItems("alice", first.cursor, 100, later);
    expect(next.items.map((i) => i.id)).toEqual([w.id]);
  });

  it("refuses a cursor it did not give out", async () => {
    await expect(requests().reviewItems("alice", '{"p":-1}', 10)).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(requests().reviewItems("alice", "garbage", 10)).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});

describe("long-poll on a request's view", () => {
  it("answers when the state moves on from `since`", async () => {
    const v = await submit();
    const since = requestState(v);
    expect(since).toBe("pending/0");
    let answered = false;
    // A long wait: a long-poll that did not wake would end only with the test's timeout.
    const waiting = requests()
      .view(v.id, { since, waitMs: 60_000 })
      .then((x) => ((answered = true), x));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    await requests().decide(v.id, approval(ca, "alice", v));
    const moved = await waiting;
    expect(requestState(moved)).toBe("pending/1");
    expect(moved.approvals.map((a) => a.custodian)).toEqual(["alice"]);
  });

  it("answers at once when the state already differs, and for a request that has ended", async () => {
    const v = await submit();
    await requests().decide(v.id, approval(ca, "alice", v, "reject"));
    // Both would otherwise hold the test until its timeout.
    expect((await requests().view(v.id, { since: "pending/0", waitMs: 60_000 })).status).toBe("rejected");
    expect((await requests().view(v.id, { since: "rejected/1", waitMs: 60_000 })).status).toBe("rejected");
    await expect(requests().certificateChain(v.id, 60_000)).rejects.toMatchObject({
      code: "CONFLICT",
      extra: { requestStatus: "rejected" },
    });
  });

  it("an aborted long-poll answers with the current view", async () => {
    const v = await submit();
    const stop = new AbortController();
    const waiting = requests().view(v.id, { since: requestState(v), waitMs: 60_000, signal: stop.signal });
    stop.abort();
    expect(requestState(await waiting)).toBe("pending/0");
  });
});
