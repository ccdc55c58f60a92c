// docs/architecture.md §3.10: bad input gets a clear error and changes nothing. Against one real `tca dev`
// CA, each malformed, oversized, unauthorised or out-of-policy submission gets a 4xx problem+json whose
// `detail` says what is wrong, and leaves no request behind. Raw PEM and DER bodies with ?profile=
// are the positive controls.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { Sandbox } from "../helpers/processes.ts";
import { KEY_ARGS, makeCsr, startDevCa, type DevCa } from "../helpers/dev-ca.ts";
import { openssl } from "../helpers/openssl.ts";

const sb = new Sandbox();
let ca: DevCa;
let dir: string;
let goodPem: string;

beforeAll(async () => {
  ca = await startDevCa(sb);
  dir = sb.tempDir("tca-bad-input-");
  goodPem = makeCsr(dir, "good", {
    newkey: KEY_ARGS.ed25519!,
    subject: "/CN=good.example.internal",
    sans: "DNS:good.example.internal",
  }).csrPem;
});
afterAll(() => sb.cleanup());

interface Sent {
  body?: string | Uint8Array;
  contentType?: string;
  /** undefined: the dev requester token; null: no Authorization header. */
  token?: string | null;
  query?: string;
}

async function post(o: Sent): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = o.token === undefined ? ca.token : o.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (o.contentType) headers["content-type"] = o.contentType;
  const body = typeof o.body === "string" || o.body === undefined ? o.body : new Uint8Array(o.body);
  return fetch(`${ca.url}/api/v1/requests${o.query ?? ""}`, { method: "POST", headers, body });
}

const json = (csr: string, profile = "server", extra: Record<string, unknown> = {}): Sent => ({
  body: JSON.stringify({ csr, profile, ...extra }),
  contentType: "application/json",
});

async function counts(): Promise<{ pending: number; all: number }> {
  const get = async (q: string) =>
    (
      (await (
        await fetch(`${ca.url}/api/v1/requests${q}`, {
          headers: { authorization: `Bearer ${ca.adminToken}` },
        })
      ).json()) as { requests: unknown[] }
    ).requests.length;
  return { pending: await get("?status=pending"), all: await get("") };
}

/** Sends `o`, expects a problem+json with `status` and a detail matching `detail`, and no new request. */
async function refused(o: Sent, status: number, detail: RegExp): Promise<Record<string, unknown>> {
  const before = await counts();
  const res = await post(o);
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(text) as Record<string, unknown>;
  expect(problem.status).toBe(status);
  expect(typeof problem.title).toBe("string");
  expect(typeof problem.type).toBe("string");
  expect(problem.detail).toMatch(detail);
  expect(await counts()).toEqual(before);
  return problem;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
}

function derToPem(der: Uint8Array, label = "CERTIFICATE REQUEST"): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

describe("issuance: bad input is refused clearly and changes nothing", () => {
  it("a CSR field that is not a CSR → 400", async () => {
    const p = await refused(json("hello"), 400, /CSR|PEM|DER/i);
    expect(p.code).toBe("BAD_REQUEST");
  });

  it("a JSON body that is not JSON, or lacks the csr field → 400", async () => {
    await refused({ body: "{not json", contentType: "application/json" }, 400, /not valid JSON/i);
    await refused(
      { body: JSON.stringify({ profile: "server" }), contentType: "application/json" },
      400,
      /csr/,
    );
    await refused(
      {
        body: JSON.stringify({ csr: goodPem, profile: "server", extra: 1 }),
        contentType: "application/json",
      },
      400,
      /extra|unrecognized/i,
    );
  });

  it("a CSR whose signature does not verify → 400", async () => {
    const { csr } = makeCsr(dir, "broken-sig", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=sig.example.internal",
      sans: "DNS:sig.example.internal",
    });
    const der = pemToDer(readFileSync(csr, "utf8"));
    // The signature BIT STRING is the CSR's last element: its final octets are signature bytes.
    der[der.length - 3]! ^= 0x01;
    const tampered = derToPem(der);
    // openssl agrees the signature no longer verifies.
    expect(() => openssl(["req", "-in", "/dev/stdin", "-noout", "-verify"], tampered)).toThrow();
    const p = await refused(json(tampered), 400, /signature/i);
    expect(p.reason).toBe("CSR_BAD_SIGNATURE");
  });

  it("a name type the server profile forbids (email SAN) → 422", async () => {
    const { csrPem } = makeCsr(dir, "email", {
      newkey: KEY_ARGS.ed25519!,
      subject: "/CN=mail.example.internal",
      sans: "DNS:mail.example.internal,email:a@b.c",
    });
    const p = await refused(json(csrPem), 422, /email.*a@b\.c.*not allowed/i);
    expect(p.reason).toBe("SAN_TYPE_NOT_ALLOWED");
  });

  it("a syntactically invalid DNS name → 422", async () => {
    const { csrPem } = makeCsr(dir, "bad-dns", {
      newkey: KEY_ARGS.ed25519!,
      subject: "/CN=x",
      sans: "DNS:bad..name",
    });
    const p = await refused(json(csrPem), 422, /bad\.\.name.*not valid/i);
    expect(p.reason).toBe("NAME_INVALID");
  });

  it("a server CSR with no subject alternative name → 422", async () => {
    const { csrPem } = makeCsr(dir, "no-san", {
      newkey: KEY_ARGS.ed25519!,
      subject: "/CN=nosan.example.internal",
    });
    await refused(json(csrPem), 422, /subject alternative name/i);
  });

  it("an RSA-1024 key → 422", async () => {
    const { csrPem } = makeCsr(dir, "rsa1024", {
      newkey: KEY_ARGS["rsa-1024"]!,
      subject: "/CN=weak.example.internal",
      sans: "DNS:weak.example.internal",
    });
    const p = await refused(json(csrPem), 422, /RSA.*1024 bits.*2048/);
    expect(p.reason).toBe("KEY_SIZE_NOT_ALLOWED");
  });

  it("an unknown profile → 400 naming the profiles on offer", async () => {
    await refused(json(goodPem, "nosuch"), 400, /unknown profile "nosuch".*server/);
    await refused(json(goodPem, "Not A Name"), 400, /profile/);
  });

  it("no token → 401", async () => {
    await refused({ ...json(goodPem), token: null }, 401, /token required/i);
  });

  it("a wrong token → 401", async () => {
    await refused(
      { ...json(goodPem), token: "definitely-not-the-requester-token" },
      401,
      /token is not valid/i,
    );
    await refused({ ...json(goodPem), token: "short" }, 401, /token/i);
  });

  it("a profile the token is not granted (intermediate) → 403", async () => {
    const { csrPem } = makeCsr(dir, "sub-ca", { newkey: KEY_ARGS.ed25519!, subject: "/CN=Sub CA" });
    await refused(json(csrPem, "intermediate"), 403, /not granted.*intermediate/);
  });

  it("a body over 64 KiB → 413", async () => {
    const p = await refused(json("A".repeat(70 * 1024)), 413, /larger than/i);
    expect(p.code).toBe("PAYLOAD_TOO_LARGE");
    // A raw body over the limit, too.
    await refused(
      {
        body: new Uint8Array(70 * 1024).fill(0x30),
        contentType: "application/pkcs10",
        query: "?profile=server",
      },
      413,
      /larger than/i,
    );
  });

  it("a CSR over the 16 KiB CSR limit (body under 64 KiB) → 413 naming the sizes", async () => {
    const huge = `-----BEGIN CERTIFICATE REQUEST-----\n${"QUFB\n".repeat(5000)}-----END CERTIFICATE REQUEST-----\n`;
    const p = await refused(json(huge), 413, /CSR is \d+ bytes; the limit is 16384/);
    expect(p.reason).toBe("CSR_TOO_LARGE");
  });

  it("an unsupported content type → 415", async () => {
    await refused({ body: "<html>hi</html>", contentType: "text/html" }, 415, /JSON|application\/pkcs10/);
    await refused(
      {
        body: `csr=${encodeURIComponent(goodPem)}&profile=server`,
        contentType: "application/x-www-form-urlencoded",
      },
      415,
      /JSON|application\/pkcs10/,
    );
  });

  it("a raw body without ?profile= → 400", async () => {
    await refused({ body: goodPem, contentType: "application/pkcs10" }, 400, /profile/);
  });

  it("validityHours over the profile cap → 422", async () => {
    const p = await refused(
      json(goodPem, "server", { validityHours: 100_000 }),
      422,
      /100000\.00 hours exceeds.*2160/,
    );
    expect(p.reason).toBe("VALIDITY_NOT_ALLOWED");
    await refused(json(goodPem, "server", { validityHours: -5 }), 400, /validityHours/);
  });

  it("positive controls: a raw PEM body and a raw DER body with ?profile=server → 202", async () => {
    const before = await counts();
    const pemRes = await post({ body: goodPem, contentType: "application/pkcs10", query: "?profile=server" });
    const pemBody = (await pemRes.json()) as { id: string; status: string };
    expect(pemRes.status, JSON.stringify(pemBody)).toBe(202);
    expect(pemBody.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(pemRes.headers.get("location")).toBe(`/api/v1/requests/${pemBody.id}`);

    const { csr } = makeCsr(dir, "der", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=der.example.internal",
      sans: "DNS:der.example.internal",
    });
    const der = pemToDer(readFileSync(csr, "utf8"));
    expect(der[0]).toBe(0x30); // a DER SEQUENCE, not PEM text
    const derRes = await post({
      body: der,
      contentType: "application/pkcs10",
      query: "?profile=server&validityHours=48",
    });
    const derBody = (await derRes.json()) as { id: string; status: string };
    expect(derRes.status, JSON.stringify(derBody)).toBe(202);

    const view = (await (
      await fetch(`${ca.url}/api/v1/requests/${derBody.id}`, {
        headers: { authorization: `Bearer ${ca.token}` },
      })
    ).json()) as {
      sans: { type: string; value: string }[];
      notBefore: string;
      notAfter: string;
      profile: string;
    };
    expect(view.sans).toEqual([{ type: "dns", value: "der.example.internal" }]);
    expect(view.profile).toBe("server");
    expect((Date.parse(view.notAfter) - Date.parse(view.notBefore)) / 3_600_000).toBe(48);
    expect((await counts()).all).toBe(before.all + 2);
  });
});
