// Shared by the finalize, revocation and renewal-information tests: an ACME account on an in-process
// CA, orders made ready without network validation, and custodians approving in process.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { approval, exchangeUntil, makeCsr, type HttpCa } from "../helpers/in-process-ca.ts";
import type { AcmeResponse, TestAcmeClient } from "../helpers/acme-client.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";

export function acmeDb(h: HttpCa) {
  return h.ca.services.store.queryBuilder<AcmeDatabase>();
}

/** base64url DER of a PEM CSR, as RFC 8555 §7.4 sends it. */
export function csrB64url(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Buffer.from(b64, "base64").toString("base64url");
}

/** newOrder for these DNS names; the order's URL and id. */
export async function newOrder(c: TestAcmeClient, names: string[]): Promise<{ url: string; id: string }> {
  const res = await c.post(c.directory.newOrder!, {
    identifiers: names.map((value) => ({ type: "dns", value })),
  });
  expect(res.status, res.text).toBe(201);
  const url = res.headers.get("location")!;
  return { url, id: url.split("/").pop()! };
}

/**
 * Marks every authorization of the order valid, with its http-01 challenge (dns-01 for a wildcard),
 * straight in the database: these tests are about what follows validation, which the order tests
 * (test/acme/orders.test.ts) cover over the network.
 */
export async function markValidated(h: HttpCa, orderId: string): Promise<void> {
  const db = acmeDb(h);
  const now = new Date().toISOString();
  const authzs = await db
    .selectFrom("acme_authorizations")
    .selectAll()
    .where("order_id", "=", orderId)
    .execute();
  for (const a of authzs) {
    await db
      .updateTable("acme_authorizations")
      .set({ status: "valid", validated_at: now, updated_at: now })
      .where("id", "=", a.id)
      .execute();
    await db
      .updateTable("acme_challenges")
      .set({ status: "valid", validated_at: now, updated_at: now })
      .where("authz_id", "=", a.id)
      .where("type", "=", a.wildcard ? "dns-01" : "http-01")
      .execute();
  }
}

export async function finalizeOrder(
  c: TestAcmeClient,
  orderUrl: string,
  csrPem: string,
): Promise<AcmeResponse> {
  return c.post(`${orderUrl}/finalize`, { csr: csrB64url(csrPem) });
}

/** The tca request id a finalized order made (null before). */
export async function requestOf(h: HttpCa, orderId: string): Promise<string | null> {
  const row = await acmeDb(h)
    .selectFrom("acme_orders")
    .select("request_id")
    .where("id", "=", orderId)
    .executeTakeFirstOrThrow();
  return row.request_id;
}

/** Two custodians approve the request (or one rejects it), and the signers sign. */
export async function decide(h: HttpCa, requestId: string, decision: "approve" | "reject", reason?: string) {
  const r = h.ca.services.requests;
  const v = await r.view(requestId);
  if (decision === "reject") {
    await r.decide(requestId, approval(h.ca, "alice", v, "reject", reason ? { reason } : {}));
    return;
  }
  for (const name of ["alice", "bob"]) await r.decide(requestId, approval(h.ca, name, v));
  await exchangeUntil(h.ca, async () => (await r.view(requestId)).status === "issued");
}

/** An issued certificate for `names` through ACME: the order's URL, id, the chain PEM and the key's CSR. */
export async function issueThroughAcme(
  h: HttpCa,
  c: TestAcmeClient,
  names: string[],
  csrPem?: string,
): Promise<{ orderUrl: string; orderId: string; chain: string; requestId: string }> {
  const { url, id } = await newOrder(c, names);
  await markValidated(h, id);
  const f = await finalizeOrder(c, url, csrPem ?? (await makeCsr(names)));
  expect(f.status, f.text).toBe(200);
  const requestId = (await requestOf(h, id))!;
  await decide(h, requestId, "approve");
  const order = await c.post(url, null);
  const cert = await c.post((order.body as { certificate: string }).certificate, null);
  expect(cert.status, cert.text).toBe(200);
  return { orderUrl: url, orderId: id, chain: cert.text, requestId };
}

/** The PEM blocks of a chain, in order. */
export function pemBlocks(chain: string): string[] {
  return chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** DER of a PEM certificate. */
export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** `openssl verify -CAfile root leaf`: the output, throws when it does not verify. */
export function opensslVerify(rootPem: string, leafPem: string): string {
  const dir = mkdtempSync(join(tmpdir(), "tca-acme-verify-"));
  writeFileSync(join(dir, "root.pem"), rootPem);
  writeFileSync(join(dir, "leaf.pem"), leafPem);
  return execFileSync("openssl", ["verify", "-CAfile", join(dir, "root.pem"), join(dir, "leaf.pem")], {
    encoding: "utf8",
  });
}
