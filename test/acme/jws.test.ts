// The ACME transport (src/acme/jws.ts, post.ts, nonces.ts) over real HTTP, before the key ceremony
// (ACME's accounts need no CA key): the directory and every URL in it, newNonce, and each rule of
// RFC 8555 §6.2–6.5 broken on purpose, answered with its error type and nothing stored.
import "reflect-metadata";
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient, type AcmeResponse } from "../helpers/acme-client.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";

let h: HttpCa;
let dir: string;

beforeAll(async () => {
  h = await startHttpCa({ acme: {} });
  dir = `${h.url}/acme/directory`;
});
afterAll(() => h.ca.close());

const db = () => h.ca.services.store.queryBuilder<AcmeDatabase>();
async function count(table: "acme_accounts" | "acme_nonces"): Promise<number> {
  const r = await db()
    .selectFrom(table)
    .select((e) => e.fn.countAll().as("n"))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const unb64 = (s: string) =>
  JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as Record<string, unknown>;

function problem(res: AcmeResponse): { type: string; status: number; algorithms?: string[] } {
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const b = res.body as { type: string; status: number };
  return { ...b, type: b.type.replace("urn:ietf:params:acme:error:", "") };
}

/** A JWS signed with node's crypto (keys jose refuses to sign with: RSA 1024, Ed448). */
function manualJws(header: Record<string, unknown>, payload: unknown, key: KeyObject, hash: string | null) {
  const protectedB64 = b64(header);
  const payloadB64 = b64(payload);
  const signature = nodeSign(hash, Buffer.from(`${protectedB64}.${payloadB64}`), key).toString("base64url");
  return JSON.stringify({ protected: protectedB64, payload: payloadB64, signature });
}

describe("directory and newNonce", () => {
  it("lists every URL, each served (none answers 'no such ACME resource')", async () => {
    const res = await fetch(dir);
    expect(res.status).toBe(200);
    expect(res.headers.get("replay-nonce")).toBeNull(); // a nonce is a database row: only POSTs and newNonce make one
    const d = (await res.json()) as Record<string, string> & { meta: Record<string, unknown> };
    for (const k of ["newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"])
      expect(d[k], k).toMatch(new RegExp(`^${h.url}/acme/`));
    expect(d.meta.externalAccountRequired).toBe(false);
    const c = await TestAcmeClient.create(dir);
    for (const k of ["newAccount", "newOrder", "revokeCert", "keyChange"]) {
      const r = await c.post(d[k]!, null, { jwk: true });
      expect(r.status, k).not.toBe(404);
      expect(r.headers.get("replay-nonce"), k).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
  });

  it("HEAD newNonce is 200, GET 204, both with a fresh Replay-Nonce and no-store", async () => {
    const c = await TestAcmeClient.create(dir);
    const head = await fetch(c.directory.newNonce!, { method: "HEAD" });
    const get = await fetch(c.directory.newNonce!);
    expect(head.status).toBe(200);
    expect(get.status).toBe(204);
    for (const r of [head, get]) {
      expect(r.headers.get("cache-control")).toBe("no-store");
      expect(r.headers.get("link")).toContain('rel="index"');
    }
    expect(head.headers.get("replay-nonce")).not.toBe(get.headers.get("replay-nonce"));
  });
});

describe("RFC 8555 §6.2–6.5: a bad request gets its error and stores nothing", () => {
  it("refuses each broken rule", async () => {
    const c = await TestAcmeClient.create(dir);
    const url = c.directory.newAccount!;
    const payload = { termsOfServiceAgreed: true };
    const signed = () => c.sign(url, payload, { jwk: true });
    const tamper = async (edit: (h: Record<string, unknown>) => void, jws?: Record<string, string>) => {
      const j = { ...(jws ?? (await signed())) };
      const hdr = unb64(j.protected!);
      edit(hdr);
      j.protected = b64(hdr);
      return JSON.stringify(j);
    };
    const cases: [string, () => Promise<AcmeResponse>, string, number?][] = [
      [
        "not application/jose+json",
        async () => c.post(url, payload, { jwk: true, contentType: "application/json" }),
        "malformed",
        415,
      ],
      [
        "compact serialization",
        async () => {
          const j = await signed();
          return c.post(url, null, { rawBody: `${j.protected}.${j.payload}.${j.signature}` });
        },
        "malformed",
      ],
      [
        "compact serialization as a JSON string",
        async () => {
          const j = await signed();
          return c.post(url, null, { rawBody: JSON.stringify(`${j.protected}.${j.payload}.${j.signature}`) });
        },
        "malformed",
      ],
      [
        "general serialization",
        async () => {
          const j = await signed();
          return c.post(url, null, {
            rawBody: JSON.stringify({
              payload: j.payload,
              signatures: [{ protected: j.protected, signature: j.signature }],
            }),
          });
        },
        "malformed",
      ],
      [
        "an unprotected header",
        async () =>
          c.post(url, null, { rawBody: JSON.stringify({ ...(await signed()), header: { kid: "x" } }) }),
        "malformed",
      ],
      [
        "an extra member",
        async () => c.post(url, null, { rawBody: JSON.stringify({ ...(await signed()), extra: "x" }) }),
        "malformed",
      ],
      [
        "alg none",
        async () => c.post(url, null, { rawBody: await tamper((x) => (x.alg = "none")) }),
        "badSignatureAlgorithm",
      ],
      [
        "alg HS256",
        async () => c.post(url, null, { rawBody: await tamper((x) => (x.alg = "HS256")) }),
        "badSignatureAlgorithm",
      ],
      [
        "no nonce",
        async () => c.post(url, null, { rawBody: await tamper((x) => delete x.nonce) }),
        "badNonce",
      ],
      [
        "an unknown nonce",
        async () => c.post(url, payload, { jwk: true, nonce: "AAAAAAAAAAAAAAAAAAAAAA" }),
        "badNonce",
      ],
      ["no url", async () => c.post(url, null, { rawBody: await tamper((x) => delete x.url) }), "malformed"],
      [
        "another URL",
        async () => c.post(url, payload, { jwk: true, url: c.directory.newOrder! }),
        "unauthorized",
      ],
      [
        "jwk and kid",
        async () =>
          c.post(url, payload, {
            jwk: true,
            extraHeader: { kid: `${h.url}/acme/account/AAAAAAAAAAAAAAAAAAAAAA` },
          }),
        "malformed",
      ],
      [
        "neither jwk nor kid",
        async () => c.post(url, null, { rawBody: await tamper((x) => delete x.jwk) }),
        "malformed",
      ],
      [
        "a private jwk",
        async () =>
          c.post(url, null, { rawBody: await tamper((x) => ((x.jwk as Record<string, string>).d = "AAAA")) }),
        "badPublicKey",
      ],
      [
        "a jwk of another curve",
        async () =>
          c.post(url, null, {
            rawBody: await tamper((x) => ((x.jwk as Record<string, string>).crv = "P-384")),
          }),
        "badPublicKey",
      ],
      [
        "crit",
        async () => c.post(url, null, { rawBody: await tamper((x) => (x.crit = ["b64"])) }),
        "malformed",
      ],
      [
        "b64: false",
        async () => c.post(url, null, { rawBody: await tamper((x) => (x.b64 = false)) }),
        "malformed",
      ],
      [
        "a signature that does not verify",
        async () => {
          const j = await signed();
          return c.post(url, null, {
            rawBody: JSON.stringify({ ...j, payload: b64({ contact: ["mailto:x@example.com"] }) }),
          });
        },
        "malformed",
      ],
      ["a payload that is not a JSON object", async () => c.post(url, ["a"], { jwk: true }), "malformed"],
      ["POST-as-GET to newAccount", async () => c.post(url, null, { jwk: true }), "malformed"],
      [
        "a kid at newAccount",
        async () => c.post(url, payload, { kid: `${h.url}/acme/account/AAAAAAAAAAAAAAAAAAAAAA` }),
        "malformed",
      ],
      [
        "a body over 64 KiB",
        async () => c.post(url, { pad: "x".repeat(70_000) }, { jwk: true }),
        "malformed",
        413,
      ],
      [
        "RSA 1024",
        async () => {
          const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
          const jwk = publicKey.export({ format: "jwk" });
          return c.post(url, null, {
            rawBody: manualJws(
              { alg: "RS256", nonce: await c.newNonce(), url, jwk },
              payload,
              privateKey,
              "sha256",
            ),
          });
        },
        "badPublicKey",
      ],
      [
        "RSA with a public exponent other than 65537 (e = 3)",
        async () => {
          const { privateKey, publicKey } = generateKeyPairSync("rsa", {
            modulusLength: 2048,
            publicExponent: 3,
          });
          const jwk = publicKey.export({ format: "jwk" });
          return c.post(url, null, {
            rawBody: manualJws(
              { alg: "RS256", nonce: await c.newNonce(), url, jwk },
              payload,
              privateKey,
              "sha256",
            ),
          });
        },
        "badPublicKey",
      ],
      [
        "an RSA modulus with a leading zero octet (a second thumbprint for one key)",
        async () => {
          const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
          const jwk = publicKey.export({ format: "jwk" });
          jwk.n = Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n!, "base64url")]).toString("base64url");
          return c.post(url, null, {
            rawBody: manualJws(
              { alg: "RS256", nonce: await c.newNonce(), url, jwk },
              payload,
              privateKey,
              "sha256",
            ),
          });
        },
        "badPublicKey",
      ],
      [
        "a P-256 x coordinate of 33 octets",
        async () =>
          c.post(url, null, {
            rawBody: await tamper((x) => {
              const k = x.jwk as Record<string, string>;
              k.x = Buffer.concat([Buffer.from([0]), Buffer.from(k.x!, "base64url")]).toString("base64url");
            }),
          }),
        "badPublicKey",
      ],
      [
        "Ed448",
        async () => {
          const { privateKey, publicKey } = generateKeyPairSync("ed448");
          const jwk = publicKey.export({ format: "jwk" });
          return c.post(url, null, {
            rawBody: manualJws(
              { alg: "EdDSA", nonce: await c.newNonce(), url, jwk },
              payload,
              privateKey,
              null,
            ),
          });
        },
        "badPublicKey",
      ],
    ];
    for (const [what, send, type, status] of cases) {
      const res = await send();
      const p = problem(res);
      expect(p.type, what).toBe(type);
      if (status) expect(res.status, what).toBe(status);
      if (type === "badSignatureAlgorithm")
        expect(p.algorithms, what).toEqual(["ES256", "ES384", "EdDSA", "RS256"]);
      // §6.5: every error response carries a fresh nonce.
      expect(res.headers.get("replay-nonce"), what).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
    expect(await count("acme_accounts")).toBe(0);
  });

  it("an unknown kid is accountDoesNotExist, and the nonce of a rejected signature is not spent", async () => {
    const c = await TestAcmeClient.create(dir);
    const nonce = await c.newNonce();
    const r = await c.post(
      c.directory.newOrder!,
      { identifiers: [{ type: "dns", value: "a.example" }] },
      {
        kid: `${h.url}/acme/account/AAAAAAAAAAAAAAAAAAAAAA`,
        nonce,
      },
    );
    expect(problem(r).type).toBe("accountDoesNotExist");
    const j = await c.sign(c.directory.newAccount!, { termsOfServiceAgreed: true }, { jwk: true });
    const bad = await c.post(c.directory.newAccount!, null, {
      rawBody: JSON.stringify({ ...j, payload: b64({ x: 1 }) }),
    });
    expect(problem(bad).type).toBe("malformed");
    // The nonce in `j` was not spent by the forged request: the genuine one goes through.
    const ok = await c.post(c.directory.newAccount!, null, { rawBody: JSON.stringify(j) });
    expect(ok.status).toBe(201);
  });

  it("a reused nonce is badNonce with a fresh Replay-Nonce that then works", async () => {
    const c = await TestAcmeClient.create(dir);
    const nonce = await c.newNonce();
    expect((await c.register()).status).toBe(201);
    const first = await c.post(c.kid!, null, { nonce });
    expect(first.status).toBe(200);
    const again = await c.post(c.kid!, null, { nonce });
    expect(problem(again).type).toBe("badNonce");
    const fresh = again.headers.get("replay-nonce")!;
    const retry = await c.post(c.kid!, null, { nonce: fresh });
    expect(retry.status).toBe(200);
  });

  it("ES256, EdDSA and RS256 accounts", async () => {
    for (const alg of ["ES256", "EdDSA", "RS256"] as const) {
      const c = await TestAcmeClient.create(dir, alg);
      const r = await c.register({ contact: ["mailto:ops@example.com"] });
      expect(r.status, alg).toBe(201);
      expect(r.headers.get("location"), alg).toMatch(new RegExp(`^${h.url}/acme/account/[A-Za-z0-9_-]{22}$`));
      const got = await c.post(c.kid!, null);
      expect(got.status, alg).toBe(200);
      expect(got.body, alg).toMatchObject({ status: "valid", contact: ["mailto:ops@example.com"] });
    }
  });
});
