// The certificate inventory over HTTP (docs/inventory.md) on a coordinator with a real CA (in-process
// DKG, root and threshold signing): several certificates issued to two requesters, then every
// filter, keyset pages followed to the end with nothing repeated or skipped, the CSV form parsed
// back, one certificate as JSON, PEM chain and DER, strict query parsing, and who sees what (admin,
// custodian signed read, each requester, anonymous).
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import {
  CertificateDetailSchema,
  CertificateListSchema,
  CSV_COLUMNS,
  csvField,
  type CertificateView,
} from "../../src/protocol/certificates.ts";
import { approval, exchangeUntil, makeCsr, type InProcessCa, startHttpCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const NAMES = ["alice", "bob", "carol"];
const OTHER_TOKEN = "second-requester-token-0123456789";
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const A = bearer(EXAMPLE_REQUESTER_TOKEN); // requester "dev"
const B = bearer(OTHER_TOKEN); // requester "other"
const ADMIN = bearer(EXAMPLE_ADMIN_TOKEN);

let coordinator: RunningCoordinator;
let ca: InProcessCa;
let url: string;
/** What was issued: request id, serial as the submit answer gave it, names, owner. */
const issued: { id: string; serial: string; name: string; owner: "dev" | "other"; profile: string }[] = [];

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
const signed = (who: string, path: string) => ({
  authorization: signReadHeader(ca.signers.get(who)!, "GET", path, Date.now()),
});
async function listed(path: string, headers: Record<string, string>) {
  const res = await get(path, headers);
  expect(res.status, await res.clone().text()).toBe(200);
  return { res, body: CertificateListSchema.parse(await res.json()) };
}
async function problem(path: string, headers: Record<string, string> = ADMIN) {
  const res = await get(path, headers);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  return { status: res.status, ...((await res.json()) as { detail: string; code: string }) };
}

beforeAll(async () => {
  ({ ca, coordinator, url } = await startHttpCa({
    names: NAMES,
    extraRequesters: [{ name: "other", token: OTHER_TOKEN }],
    ceremony: true,
  }));

  const plan: [string, "dev" | "other", string][] = [
    ["api.example.internal", "dev", "server"],
    ["db.example.internal", "dev", "server"],
    ["Cache.Example.Internal", "other", "server"],
    ["worker.example.internal", "dev", "client"],
    ["queue.example.internal", "other", "server"],
    ["mail.example.internal", "dev", "server"],
    ["search.example.internal", "other", "client"],
  ];
  for (const [name, owner, profile] of plan) {
    const r = await fetch(`${url}/api/v1/requests`, {
      method: "POST",
      headers: { ...(owner === "dev" ? A : B), "content-type": "application/json" },
      body: JSON.stringify({ csr: await makeCsr([name.toLowerCase()], name), profile }),
    });
    expect(r.status, await r.clone().text()).toBe(202);
    const { id, serial } = (await r.json()) as { id: string; serial: string };
    const view = await ca.services.requests.view(id);
    for (const who of ["alice", "bob"]) await ca.services.requests.decide(id, approval(ca, who, view));
    await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
    issued.push({ id, serial, name, owner, profile });
  }
  // One revoked (by its owner).
  const rev = await fetch(`${url}/api/v1/certificates/${issued[1]!.serial}/revoke`, {
    method: "POST",
    headers: { ...A, "content-type": "application/json" },
    body: JSON.stringify({ reason: "superseded" }),
  });
  expect(rev.status, await rev.clone().text()).toBe(200);
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
});

const ids = (cs: CertificateView[]) => cs.map((c) => c.requestId);

describe("GET /api/v1/certificates", () => {
  it("lists every issued certificate to an admin and a custodian, newest first, with its record", async () => {
    const { body } = await listed("/api/v1/certificates", ADMIN);
    expect(ids(body.certificates)).toEqual(issued.map((c) => c.id).reverse());
    expect(body.next).toBeNull();
    const api = body.certificates.find((c) => c.requestId === issued[0]!.id)!;
    expect(api).toMatchObject({
      serial: expect.stringMatching(/^[0-9a-f]+$/),
      subject: "CN=api.example.internal",
      sans: [{ type: "dns", value: "api.example.internal" }],
      profile: "server",
      requester: "dev",
      status: "valid",
      keyType: "ec-p256",
    });
    expect(api.serial).not.toMatch(/^00/);
    expect(Date.parse(api.notAfter)).toBeGreaterThan(Date.now());
    const path = "/api/v1/certificates?limit=500";
    const custodian = await listed(path, signed("carol", path));
    expect(custodian.body.certificates).toHaveLength(issued.length);
  });

  it("shows a requester only its own; its requester filter cannot widen that", async () => {
    const mine = await listed("/api/v1/certificates", A);
    expect(ids(mine.body.certificates).sort()).toEqual(
      issued
        .filter((c) => c.owner === "dev")
        .map((c) => c.id)
        .sort(),
    );
    const theirs = await listed("/api/v1/certificates", B);
    expect(theirs.body.certificates.every((c) => c.requester === "other")).toBe(true);
    expect(theirs.body.certificates).toHaveLength(3);
    expect((await listed("/api/v1/certificates?requester=other", A)).body.certificates).toEqual([]);
    expect((await listed("/api/v1/certificates?requester=other", ADMIN)).body.certificates).toHaveLength(3);
    const anonymous = await get("/api/v1/certificates");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect((await get("/api/v1/certificates", bearer("not-a-valid-token-at-all"))).status).toBe(401);
  });

  it("filters by name substring, status, profile, serial in any form and expiry", async () => {
    const names = async (query: string, who = ADMIN) =>
      (await listed(`/api/v1/certificates?${query}`, who)).body.certificates
        .map((c) => c.sans[0]!.value)
        .sort();
    expect(await names("q=CACHE.example")).toEqual(["cache.example.internal"]);
    expect(await names("q=example.internal&profile=client")).toEqual([
      "search.example.internal",
      "worker.example.internal",
    ]);
    expect(await names("status=revoked")).toEqual(["db.example.internal"]);
    const revoked = (await listed("/api/v1/certificates?status=revoked", ADMIN)).body.certificates[0]!;
    expect(revoked).toMatchObject({ status: "revoked", reason: "superseded", revokedAt: expect.any(String) });
    expect(await names("status=valid")).toHaveLength(issued.length - 1);
    expect(await names("status=expired")).toEqual([]);
    // openssl's forms: upper case, colons, with the sign octet.
    const s = issued[4]!.serial;
    const opensslForm = (s.length % 2 ? `0${s}` : s).toUpperCase().replace(/(..)(?!$)/g, "$1:");
    expect(await names(`serial=${encodeURIComponent(opensslForm)}`)).toEqual(["queue.example.internal"]);
    expect(await names(`serial=0x${s}`)).toEqual(["queue.example.internal"]);
    const far = new Date(Date.now() + 10 * 365 * 86_400_000).toISOString();
    expect(await names(`expiresBefore=${far}`)).toHaveLength(issued.length);
    expect(await names(`expiresAfter=${far}`)).toEqual([]);
    expect(await names("expiresBefore=2000-01-01")).toEqual([]);
    expect(await names("expiresAfter=2000-01-01T00:00:00%2B02:00")).toHaveLength(issued.length);
  });

  it("pages through everything with the next cursor: no duplicates, no gaps, in the order of the whole list", async () => {
    for (const sort of ["-issued", "issued", "notAfter", "-notAfter"]) {
      const whole = ids((await listed(`/api/v1/certificates?sort=${sort}`, ADMIN)).body.certificates);
      const seen: string[] = [];
      let path: string | null = `/api/v1/certificates?sort=${sort}&limit=2`;
      while (path !== null) {
        const { res, body } = await listed(path, ADMIN);
        expect(body.certificates.length).toBeLessThanOrEqual(2);
        seen.push(...ids(body.certificates));
        if (body.next === null) {
          expect(res.headers.get("link")).toBeNull();
          path = null;
        } else {
          // The Link header names the same next page.
          expect(res.headers.get("link")).toContain(`cursor=${body.next}`);
          path = `/api/v1/certificates?sort=${sort}&limit=2&cursor=${body.next}`;
        }
      }
      expect(seen, sort).toEqual(whole);
      expect(new Set(seen).size).toBe(issued.length);
    }
  });

  it("answers CSV for Accept: text/csv and ?format=csv, which parses back to the same records", async () => {
    const json = (await listed("/api/v1/certificates", ADMIN)).body.certificates;
    for (const [path, headers] of [
      ["/api/v1/certificates", { ...ADMIN, accept: "text/csv" }],
      ["/api/v1/certificates?format=csv", ADMIN],
    ] as const) {
      const res = await get(path, headers);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
      const text = await res.text();
      expect(text.endsWith("\r\n")).toBe(true);
      const rows = parseCsv(text);
      expect(rows[0]).toEqual([...CSV_COLUMNS]);
      expect(rows).toHaveLength(json.length + 1);
      const records = rows.slice(1).map((r) => Object.fromEntries(CSV_COLUMNS.map((k, i) => [k, r[i]])));
      expect(records.map((r) => r.requestId)).toEqual(ids(json));
      const revoked = records.find((r) => r.status === "revoked")!;
      expect(revoked).toMatchObject({
        reason: "superseded",
        requester: "dev",
        sans: "dns:db.example.internal",
      });
      expect(records[0]!.serial).toBe(json[0]!.serial);
      expect(records[0]!.subject).toBe(json[0]!.subject);
    }
  });

  it("refuses unknown parameters and bad values with a 400 naming the parameter", async () => {
    for (const [query, named] of [
      ["colour=blue", "colour"],
      ["limit=0", "limit"],
      ["limit=501", "limit"],
      ["limit=1e2", "limit"],
      ["status=active", "status"],
      ["sort=subject", "sort"],
      ["expiresBefore=tomorrow", "expiresBefore"],
      ["expiresAfter=2027-02-30T00:00:00Z", "expiresAfter"],
      ["serial=xyz", "serial"],
      ["cursor=%21%21", "cursor"],
      ["cursor=bm90LWEtY3Vyc29y", "cursor"],
      ["format=xml", "format"],
      ["q=a%0Ab", "q"],
      ["limit=1&limit=2", "limit"],
    ]) {
      const p = await problem(`/api/v1/certificates?${query}`);
      expect(p.status, query).toBe(400);
      expect(p.code).toBe("BAD_REQUEST");
      expect(p.detail, query).toContain(named);
    }
    // A cursor is for the sort and filters it was made with.
    const { body } = await listed("/api/v1/certificates?limit=1", ADMIN);
    const p = await problem(`/api/v1/certificates?limit=1&profile=server&cursor=${body.next}`);
    expect([p.status, p.detail]).toEqual([400, expect.stringMatching(/cursor.*filters/)]);
  });
});

describe("GET /api/v1/certificates/{serial}", () => {
  it("answers the record with the PEM chain, the chain for Accept: application/pem-certificate-chain, the DER leaf for ?format=der", async () => {
    const c = issued[0]!;
    const res = await get(`/api/v1/certificates/${c.serial}`, A);
    expect(res.status).toBe(200);
    const d = CertificateDetailSchema.parse(await res.json());
    expect(d).toMatchObject({ requestId: c.id, requester: "dev", status: "valid" });
    const chain = await (
      await get(`/api/v1/certificates/${c.serial}`, { ...A, accept: "application/pem-certificate-chain" })
    ).text();
    expect(chain).toBe(d.pem);
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const viaRequest = await (await get(`/api/v1/requests/${c.id}/certificate`, A)).text();
    expect(chain).toBe(viaRequest);
    const pemRes = await get(`/api/v1/certificates/${c.serial.toUpperCase()}?format=pem`, A);
    expect(pemRes.headers.get("content-type")).toMatch(/^application\/pem-certificate-chain/);
    for (const r of [
      await get(`/api/v1/certificates/${c.serial}?format=der`, A),
      await get(`/api/v1/certificates/${c.serial}`, { ...A, accept: "application/pkix-cert" }),
    ]) {
      expect(r.headers.get("content-type")).toMatch(/^application\/pkix-cert/);
      const leaf = new X509Certificate(Buffer.from(await r.arrayBuffer()));
      expect(leaf.subject).toBe("CN=api.example.internal");
      expect(leaf.toString()).toBe(new X509Certificate(chain).toString());
    }
  });

  it("is 404 for another requester's serial and for an unknown one, 400 for a bad one, 401 anonymous", async () => {
    const theirs = issued[2]!;
    expect((await problem(`/api/v1/certificates/${theirs.serial}`, A)).status).toBe(404);
    expect((await get(`/api/v1/certificates/${theirs.serial}`, B)).status).toBe(200);
    expect((await get(`/api/v1/certificates/${theirs.serial}`, ADMIN)).status).toBe(200);
    const path = `/api/v1/certificates/${theirs.serial}`;
    expect((await get(path, signed("alice", path))).status).toBe(200);
    expect((await problem("/api/v1/certificates/0badc0ffee0badc0ffee")).status).toBe(404);
    expect((await problem("/api/v1/certificates/not-hex")).status).toBe(400);
    expect((await problem(`/api/v1/certificates/${theirs.serial}?format=txt`)).detail).toContain("format");
    expect((await get(`/api/v1/certificates/${theirs.serial}`)).status).toBe(401);
  });
});

describe("CSV cells", () => {
  it("quotes per RFC 4180 and defuses cells a spreadsheet would run as formulas", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField('a,b "c"')).toBe('"a,b ""c"""');
    expect(csvField("line\nbreak")).toBe('"line\nbreak"');
    for (const f of ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"]) expect(csvField(f)).toBe(`'${f}`);
    expect(csvField('=HYPERLINK("x",1)')).toBe('"\'=HYPERLINK(""x"",1)"');
  });
});

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
  }
  return rows;
}
