// ACME's edges: body-parser refusals are RFC 8555 errors, not 500s; the coordinator's rate limit
// answers ACME clients with `rateLimited`; nonces are made only where RFC 8555 asks for them (they
// are database rows); accounts let in by open registration are locked out once ca-config closes it.
import { afterAll, describe, expect, it } from "vitest";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";

const cas: HttpCa[] = [];
afterAll(async () => {
  for (const c of cas) await c.ca.close();
});

async function ca(o: Parameters<typeof startHttpCa>[0] = {}): Promise<HttpCa> {
  const h = await startHttpCa({ acme: {}, ...o });
  cas.push(h);
  return h;
}

const nonceRows = async (h: HttpCa): Promise<number> =>
  Number(
    (
      await h.ca.services.store
        .queryBuilder<AcmeDatabase>()
        .selectFrom("acme_nonces")
        .select((e) => e.fn.countAll().as("n"))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe("ACME hardening", () => {
  it("a body the parser refuses (charset, content encoding) is malformed with its 4xx status, not a 500", async () => {
    const h = await ca();
    const c = await TestAcmeClient.create(`${h.url}/acme/directory`);
    const jws = JSON.stringify(await c.sign(c.directory.newAccount!, {}, { jwk: true }));
    const latin1 = await c.post(c.directory.newAccount!, null, {
      rawBody: jws,
      contentType: "application/jose+json; charset=latin1",
    });
    expect(latin1.status).toBe(415);
    expect((latin1.body as { type: string }).type).toBe("urn:ietf:params:acme:error:malformed");
    expect(latin1.headers.get("replay-nonce")).toBeTruthy();
    const encoded = await fetch(c.directory.newAccount!, {
      method: "POST",
      headers: { "content-type": "application/jose+json", "content-encoding": "foo" },
      body: jws,
    });
    expect(encoded.status).toBe(415);
    expect(((await encoded.json()) as { type: string }).type).toBe("urn:ietf:params:acme:error:malformed");
  });

  it("GETs of the directory make no nonce; newNonce and POSTs do", async () => {
    const h = await ca();
    const before = await nonceRows(h);
    for (let i = 0; i < 5; i++) {
      const d = await fetch(`${h.url}/acme/directory`);
      expect(d.headers.get("replay-nonce")).toBeNull();
    }
    expect(await nonceRows(h)).toBe(before);
    const n = await fetch(`${h.url}/acme/new-nonce`, { method: "HEAD" });
    expect(n.headers.get("replay-nonce")).toBeTruthy();
    expect(await nonceRows(h)).toBe(before + 1);
  });

  it("the coordinator's rate limit answers ACME paths with urn:ietf:params:acme:error:rateLimited", async () => {
    const h = await ca({ limits: { perLoopbackIp: { ratePerSecond: 1, burst: 3 } } });
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) last = await fetch(`${h.url}/acme/directory`);
    expect(last!.status).toBe(429);
    expect(last!.headers.get("retry-after")).toMatch(/^[0-9]+$/);
    const body = (await last!.json()) as { type: string; status: number };
    expect(body).toMatchObject({ type: "urn:ietf:params:acme:error:rateLimited", status: 429 });
  });

  it("closing open registration locks out the accounts it let in", async () => {
    const h = await ca();
    const c = await TestAcmeClient.create(`${h.url}/acme/directory`);
    expect((await c.register()).status).toBe(201);
    expect((await c.post(c.kid!, null)).status).toBe(200);
    // As after a restart with ca-config's acme.openRegistration removed.
    delete (h.ca.config.config.acme as { openRegistration?: unknown }).openRegistration;
    const res = await c.post(c.kid!, null);
    expect(res.status).toBe(403);
    expect((res.body as { type: string; detail: string }).detail).toMatch(/external account binding/);
    const order = await c.post(c.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "a.example.internal" }],
    });
    expect(order.status).toBe(403);
  });
});
