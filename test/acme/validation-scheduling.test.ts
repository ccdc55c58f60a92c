// How background validations run (src/acme/orders.ts): at most MAX_CONCURRENT_VALIDATIONS at once in
// one process, one more refused with rateLimited and Retry-After while its challenge stays pending;
// and a validation that ends after its authorization expired leaves it expired (RFC 8555 §7.1.6).
// On a real coordinator with ACME over HTTP and an http-01 server on loopback that holds each
// answer until the test lets it go.
import { createServer, type ServerResponse, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CONCURRENT_VALIDATIONS } from "../../src/acme/orders.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";

/** An http-01 server that answers a token's key authorization only when `release(token)` is called. */
interface HoldingResponder {
  port: number;
  set(token: string, keyAuthorization: string): void;
  /** Tokens whose request arrived and waits. */
  waiting(): string[];
  release(token: string): void;
  releaseAll(): void;
  close(): Promise<void>;
}

async function startHoldingResponder(): Promise<HoldingResponder> {
  const answers = new Map<string, string>();
  const held = new Map<string, ServerResponse>();
  const answer = (token: string, res: ServerResponse): void => {
    const body = answers.get(token);
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200).end(body);
  };
  const server: Server = createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "")?.[1];
    if (!token) return void res.writeHead(404).end();
    held.set(token, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const release = (token: string): void => {
    const res = held.get(token);
    if (!res) throw new Error(`no request for ${token} is waiting`);
    held.delete(token);
    answer(token, res);
  };
  return {
    port: (server.address() as { port: number }).port,
    set: (token, keyAuthorization) => void answers.set(token, keyAuthorization),
    waiting: () => [...held.keys()],
    release,
    releaseAll: () => [...held.keys()].forEach(release),
    close: () => new Promise<void>((r) => server.close(() => r()).closeAllConnections()),
  };
}

let ca: HttpCa;
let responder: HoldingResponder;
let dir: string;

beforeAll(async () => {
  responder = await startHoldingResponder();
  ca = await startHttpCa({
    ceremony: true,
    acme: {
      config: { ordersPerHour: 1_000 },
      // Longer than any test holds an answer: a held validation ends when it is released.
      validation: { httpPort: responder.port, timeoutMs: 30_000 },
    },
  });
  dir = `${ca.url}/acme/directory`;
}, 120_000);
afterAll(async () => {
  responder?.releaseAll();
  await responder?.close();
  await ca?.ca.close();
});

interface ChallengeBody {
  type: string;
  url: string;
  status: string;
  token: string;
}
interface AuthzBody {
  status: string;
  expires: string;
  challenges: ChallengeBody[];
}

/** A new order for 127.0.0.1: its authorization's URL and http-01 challenge, served (once released). */
async function http01Challenge(c: TestAcmeClient): Promise<{ authz: string; challenge: ChallengeBody }> {
  const res = await c.post(c.directory.newOrder!, { identifiers: [{ type: "ip", value: "127.0.0.1" }] });
  expect(res.status).toBe(201);
  const authz = (res.body as { authorizations: string[] }).authorizations[0]!;
  const body = (await c.post(authz, null)).body as AuthzBody;
  const challenge = body.challenges.find((x) => x.type === "http-01")!;
  responder.set(challenge.token, await c.keyAuthorization(challenge.token));
  return { authz, challenge };
}

async function eventually(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} never happened`);
}

const challengeStatus = async (c: TestAcmeClient, url: string): Promise<string> =>
  ((await c.post(url, null)).body as ChallengeBody).status;

describe("background validations", () => {
  it(`runs at most ${MAX_CONCURRENT_VALIDATIONS} at once; one more is rateLimited, its challenge still pending`, async () => {
    const c = await TestAcmeClient.create(dir);
    expect((await c.register()).status).toBe(201);
    const all = [];
    for (let i = 0; i <= MAX_CONCURRENT_VALIDATIONS; i++) all.push(await http01Challenge(c));
    const running = all.slice(0, MAX_CONCURRENT_VALIDATIONS);
    const extra = all[MAX_CONCURRENT_VALIDATIONS]!;
    for (const { challenge } of running) {
      const r = await c.post(challenge.url, {});
      expect(r.status).toBe(200);
      expect((r.body as ChallengeBody).status).toBe("processing");
    }
    await eventually(
      "every validation reaching the responder",
      () => responder.waiting().length === MAX_CONCURRENT_VALIDATIONS,
    );

    const refused = await c.post(extra.challenge.url, {});
    expect(refused.status).toBe(429);
    expect((refused.body as { type: string }).type).toBe("urn:ietf:params:acme:error:rateLimited");
    expect(Number(refused.headers.get("retry-after"))).toBe(30);
    expect(await challengeStatus(c, extra.challenge.url)).toBe("pending");
    expect(responder.waiting()).not.toContain(extra.challenge.token);
    // A challenge already processing is answered as it is, slots full or not.
    expect(await challengeStatus(c, running[0]!.challenge.url)).toBe("processing");
    const again = await c.post(running[0]!.challenge.url, {});
    expect(again.status).toBe(200);
    expect((again.body as ChallengeBody).status).toBe("processing");

    // One finishes: its slot is free, and the refused challenge starts.
    responder.release(running[0]!.challenge.token);
    await eventually(
      "the released validation being recorded",
      async () => (await challengeStatus(c, running[0]!.challenge.url)) === "valid",
    );
    let started = await c.post(extra.challenge.url, {});
    // The slot is freed just after the result is stored: a moment later at most.
    for (let i = 0; i < 20 && started.status === 429; i++) {
      await new Promise((r) => setTimeout(r, 50));
      started = await c.post(extra.challenge.url, {});
    }
    expect(started.status).toBe(200);
    expect((started.body as ChallengeBody).status).toBe("processing");

    await eventually("the started validation reaching the responder", () =>
      responder.waiting().includes(extra.challenge.token),
    );
    responder.releaseAll();
    for (const { authz } of all)
      await eventually(
        "every authorization valid",
        async () => ((await c.post(authz, null)).body as AuthzBody).status === "valid",
      );
  });

  it("a validation that ends after its authorization expired leaves it expired", async () => {
    const c = await TestAcmeClient.create(dir);
    expect((await c.register()).status).toBe(201);
    const { authz, challenge } = await http01Challenge(c);
    expect((await c.post(challenge.url, {})).status).toBe(200);
    await eventually("the validation reaching the responder", () =>
      responder.waiting().includes(challenge.token),
    );
    // It expires while the validation waits for its answer.
    const db = ca.ca.services.store.queryBuilder<AcmeDatabase>();
    const expired = new Date(Date.now() - 1_000).toISOString();
    await db
      .updateTable("acme_authorizations")
      .set({ expires_at: expired })
      .where("id", "=", authz.split("/").at(-1)!)
      .execute();
    responder.release(challenge.token);
    await eventually(
      "the validation being recorded",
      async () => (await challengeStatus(c, challenge.url)) !== "processing",
    );
    const after = (await c.post(authz, null)).body as AuthzBody;
    expect(after.status).toBe("expired");
    expect(after.expires).toBe(expired);
  });
});
