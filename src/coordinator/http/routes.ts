// The route table. Handlers parse, call one domain function, render.
import express, { type Router } from "express";
import { z } from "zod";
import type { CoordinatorServices } from "../services.ts";
import { CoordinatorError } from "../errors.ts";
import { authenticate, Readers, type Reader } from "./auth.ts";
import { rosterKeys } from "../../protocol/envelope.ts";
import { clock } from "../clock.ts";
import { toPem } from "../../x509/der.ts";
import { OFFERED_REVOCATION_REASONS, RevokeBodySchema } from "../../protocol/crl-params.ts";
import type { RevocationReason } from "../../x509/crl.ts";
import type { RevocationActor } from "../revocation.ts";
import { openApiDocument } from "./openapi.ts";
import { issuedRenewalsOf, registerRenewals } from "./renewals.ts";
import { decimalInt, describeIssues, MAX_WAIT_SECONDS, parseQuery, ViewQuery } from "./query.ts";
import { certificateRoutes } from "./certificates.ts";
import { ocspRoutes } from "../ocsp/http.ts";
import type { OcspResponder } from "../ocsp/responder.ts";
import { auditRoutes } from "../audit/http.ts";
import { checkpointRoutes } from "../audit/checkpoint-routes.ts";
import { caRoutes } from "./ca-routes.ts";
import { lifecycleRoutes } from "../lifecycle/http.ts";
import { DkgMessageTypeSchema, REQUEST_STATUSES, RequestStatusSchema } from "../../protocol/enums.ts";
import { MAX_VALIDITY_HOURS, ProfileNameSchema, SubmitBodySchema } from "../../protocol/submit.ts";

const ENVELOPE_LIMIT = "256kb";
/** A full exchange: up to MAX_BATCH envelopes of a few KiB each. */
const EXCHANGE_LIMIT = "4mb";
const CeremonyMessagesQuery = z
  .object({ type: DkgMessageTypeSchema, wait: decimalInt(0, 30).default(0) })
  .strict();

export function routes(s: CoordinatorServices, o: { ocsp?: OcspResponder } = {}): Router {
  const r = express.Router();
  const json = express.json({ limit: ENVELOPE_LIMIT });
  const exchangeJson = express.json({ limit: EXCHANGE_LIMIT });
  const requireJson: express.RequestHandler = (req, _res, next) => {
    if (req.body === undefined)
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        "send a JSON body with Content-Type: application/json",
      );
    next();
  };

  // Who may read what (docs/security-model.md): public routes need nothing; everything else names
  // the readers it admits. A requester sees only its own requests (another's id is "not found").
  // Built on first use: registering the routes touches no service (test/coordinator/openapi.test.ts).
  let readerCache: Readers | undefined;
  const readers = (): Readers =>
    (readerCache ??= new Readers({
      admins: s.config.config.admins,
      requesters: s.config.config.requesters,
      roster: rosterKeys(s.config.config.custodians),
      nonces: s.store,
      now: () => clock.now(),
    }));
  const ownerOf = (r: Reader): string | undefined => (r.kind === "requester" ? r.name : undefined);

  // Readiness: 503 until the CA key and root exist (and while the database is away), so a load
  // balancer sends nothing to a coordinator that cannot issue. Liveness is /api/v1/health/live.
  // Public, with counts only; the per-custodian and per-replica detail is for admins and custodians.
  r.get("/api/v1/health", async (req, res) => {
    const reader = await readers()
      .resolve(req)
      .catch(() => undefined);
    const h = await s.health();
    res.status(h.ready ? 200 : 503).json(healthFor(h.body, reader));
  });
  r.get("/api/v1/health/live", (_req, res) => {
    res.json({ status: "live", replica: s.replica.id });
  });
  r.get("/metrics", async (req, res) => {
    await readers().require(req, ["admin"], "/metrics");
    res.type(s.hooks.metrics.registry.contentType).send(await s.hooks.metrics.registry.metrics());
  });
  // Long-poll: answers as soon as anything changed after `after`, or after `wait` seconds.
  r.get("/api/v1/changes", async (req, res) => {
    await readers().require(req, ["admin", "custodian", "requester"], "the change feed");
    const q = parseQuery(ChangesQuery, req.query, "after must be an integer ≥ 0 and wait 0-30 seconds");
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    res.json({ seq: await s.hooks.feed.wait(q.after, q.wait * 1000, gone.signal) });
  });
  r.post("/api/v1/custodians/heartbeat", json, requireJson, async (req, res) => {
    res.json(await s.heartbeat(req.body));
  });
  r.get("/api/v1/openapi.json", (_req, res) => {
    res.json(openApiDocument);
  });

  const caCert = async () => {
    const der = await s.caCertificate();
    if (!der)
      throw new CoordinatorError(
        "NOT_FOUND",
        "the CA has no root certificate yet: run the key ceremony first",
      );
    return der;
  };
  r.get("/ca.pem", async (_req, res) => {
    res.type("application/x-pem-file").send(toPem(await caCert(), "CERTIFICATE"));
  });
  r.get("/ca.crt", async (_req, res) => {
    res.type("application/pkix-cert").send(Buffer.from(await caCert()));
  });
  r.get("/crl", async (_req, res) => {
    res.type("application/pkix-crl").send(Buffer.from(await s.revocations.currentCrl()));
  });
  r.get("/crl.pem", async (_req, res) => {
    res.type("application/x-pem-file").send(toPem(await s.revocations.currentCrl(), "X509 CRL"));
  });
  // OCSP (RFC 6960, RFC 5019): POST /ocsp and GET /ocsp/{request}, public (docs/ocsp.md).
  ocspRoutes(r, () => o.ocsp);

  r.post("/api/v1/ceremonies", async (req, res) => {
    authenticate(req, s.config.config.admins, "admin");
    res.status(201).json(await s.ceremonies.start());
  });
  r.get("/api/v1/ceremonies/:id", async (req, res) => {
    await readers().require(req, ["admin", "custodian"], "ceremonies");
    res.json(await s.ceremonies.view(String(req.params.id)));
  });
  // Long-poll with ?wait=S: answers once every custodian sent `type` or the ceremony ended.
  r.get("/api/v1/ceremonies/:id/messages", async (req, res) => {
    await readers().require(req, ["admin", "custodian"], "ceremony messages");
    const q = parseQuery(
      CeremonyMessagesQuery,
      req.query,
      "query parameter type must name a DKG message type, and wait be 0-30 seconds",
    );
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    res.json(
      await s.ceremonies.messages(String(req.params.id), q.type, {
        waitMs: q.wait * 1000,
        signal: gone.signal,
      }),
    );
  });
  r.post("/api/v1/ceremonies/:id/messages", json, requireJson, async (req, res) => {
    res.status(202).json(await s.ceremonies.receive(String(req.params.id), req.body));
  });

  r.get("/api/v1/signing/jobs/:id", async (req, res) => {
    await readers().require(req, ["admin", "custodian"], "signing jobs");
    res.json(await s.signing.get(String(req.params.id)));
  });
  // The custodian exchange: a batch of signed envelopes in, this custodian's work out (long-poll).
  // Its answer holds the requests this custodian is to review, so it is a read like any other: the
  // caller proves with a signed read (before the body is parsed) that it is the custodian it names.
  const exchangeAuth: express.RequestHandler = (req, res, next) => {
    readers()
      .require(req, ["custodian"], "the custodian exchange")
      .then((reader) => {
        res.locals.custodian = reader.name;
        next();
      }, next);
  };
  r.post("/api/v1/custodians/exchange", exchangeAuth, exchangeJson, requireJson, async (req, res) => {
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    res.json(await s.exchange.exchange(req.body, gone.signal, res.locals.custodian as string));
  });

  // Requests: JSON {"csr": PEM, "profile": name} or a raw PEM/DER body with ?profile=.
  const requestJson = express.json({ limit: REQUEST_LIMIT });
  const requestRaw = express.raw({
    type: ["application/pkcs10", "application/x-pem-file", "application/octet-stream", "text/plain"],
    limit: REQUEST_LIMIT,
  });
  // Authenticate before reading the body: strangers do not get to make us parse 64 KiB.
  const requesterAuth: express.RequestHandler = (req, res, next) => {
    res.locals.requester = s.requests.requesterFor(
      authenticate(req, s.config.config.requesters, "requester"),
    );
    next();
  };
  r.post("/api/v1/requests", requesterAuth, requestJson, requestRaw, async (req, res) => {
    const requester = res.locals.requester as ReturnType<typeof s.requests.requesterFor>;
    let submission: { csr: string | Uint8Array; profile: string; validityHours?: number };
    if (Buffer.isBuffer(req.body)) {
      const q = RawQuery.safeParse(req.query);
      if (!q.success) {
        // Name the actual problem: a missing profile is one, a bad validityHours another.
        const missingProfile = q.error.issues.some(
          (i) => i.path[0] === "profile" && i.code === "invalid_type" && i.input === undefined,
        );
        throw new CoordinatorError(
          "BAD_REQUEST",
          missingProfile
            ? "a raw CSR body needs ?profile=NAME"
            : `invalid raw submission: ${describeIssues(q.error)}`,
        );
      }
      submission = { csr: new Uint8Array(req.body), ...q.data };
    } else if (req.body !== undefined) {
      const b = SubmitBodySchema.safeParse(req.body);
      if (!b.success)
        throw new CoordinatorError(
          "BAD_REQUEST",
          `invalid request body: ${b.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
        );
      submission = b.data;
    } else {
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        'send JSON {"csr", "profile"} or a PEM/DER CSR as application/pkcs10',
      );
    }
    const view = await s.requests.submit({ requester, ...submission });
    res.status(202).location(`/api/v1/requests/${view.id}`).json({
      id: view.id,
      status: view.status,
      serial: view.serial,
      approvals: view.approvals,
      missing: view.missing,
    });
  });
  r.get("/api/v1/requests", async (req, res) => {
    const reader = await readers().require(req, ["admin", "custodian", "requester"], "requests");
    const status = RequestStatusSchema.optional().safeParse(req.query.status);
    if (!status.success)
      throw new CoordinatorError("BAD_REQUEST", `status must be one of ${REQUEST_STATUSES.join(", ")}`);
    res.json({ requests: await s.requests.list(status.data, ownerOf(reader)) });
  });
  r.get("/api/v1/requests/:id", async (req, res) => {
    const reader = await readers().require(req, ["admin", "custodian", "requester"], "requests");
    const q = parseQuery(ViewQuery, req.query, "wait must be 0-60 seconds and since a state like pending/1");
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    res.json(
      await s.requests.view(String(req.params.id), {
        waitMs: q.wait * 1000,
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(reader.kind === "requester" ? { owner: reader.name } : {}),
        signal: gone.signal,
      }),
    );
  });
  r.get("/api/v1/requests/:id/certificate", async (req, res) => {
    const reader = await readers().require(req, ["admin", "custodian", "requester"], "certificates");
    const wait = parseQuery(WaitQuery, req.query, "wait must be 0-60 seconds");
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const pem = await s.requests.certificateChain(
      String(req.params.id),
      wait.wait * 1000,
      gone.signal,
      ownerOf(reader),
    );
    res.type("application/pem-certificate-chain").send(pem);
  });
  // The envelope authenticates the decision, not who sends it (anyone may relay one): the request as
  // it now stands goes only to a reader who may see it (a custodian's signed read); anyone else
  // learns whether the decision counted, not the request (docs/security-model.md).
  r.post("/api/v1/requests/:id/approvals", json, requireJson, async (req, res) => {
    const reader = await readers().resolve(req);
    const refusal = await s.signing.refusal(); // a reshare or repair is not yet in ca-config
    if (refusal) throw new CoordinatorError("CONFLICT", refusal);
    const view = await s.requests.decide(String(req.params.id), req.body);
    res
      .status(202)
      .json(
        reader?.kind === "custodian" || reader?.kind === "admin"
          ? view
          : { id: view.id, status: view.status, missing: view.missing },
      );
  });

  // Revocation: the requester that owns the certificate, or an admin.
  r.post("/api/v1/certificates/:serial/revoke", json, async (req, res) => {
    const actor = revocationActor(req, s);
    // A body must be JSON: a form-encoded or text reason is refused (415), never read as
    // "unspecified" (a revocation cannot be corrected afterwards). No body at all means unspecified.
    const hasBody = req.get("transfer-encoding") !== undefined || Number(req.get("content-length") ?? 0) > 0;
    if (hasBody && !req.is("application/json"))
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        'send the reason as JSON {"reason": …} with Content-Type: application/json (or no body for unspecified)',
      );
    const body = RevokeBodySchema.safeParse(req.body ?? {});
    if (!body.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `reason must be one of: ${OFFERED_REVOCATION_REASONS.join(", ")}`,
      );
    const done = await s.revocations.revoke(
      String(req.params.serial),
      body.data.reason as RevocationReason,
      actor,
    );
    res.json({ ...done, renewals: await issuedRenewalsOf(s, done.serial) }); // not revoked with it
  });
  // The certificate inventory: list, search, export, fetch by serial (docs/inventory.md).
  certificateRoutes(r, s, readers);
  auditRoutes(r, s, readers); // the audit chain (docs/audit.md)
  checkpointRoutes(r, s); // threshold-signed checkpoints of its head, on demand (docs/audit.md)
  caRoutes(r, s, readers); // intermediate mode: the CA key's CSR, an external CA certificate (docs/intermediate.md)

  lifecycleRoutes(r, s); // refresh, reshare, repair and roster changes (docs/key-lifecycle.md)

  registerRenewals(r, s); // renewal by the current certificate (renewals.ts)

  return r;
}

/**
 * What /api/v1/health shows: everything to an admin or a custodian; to anyone else the status and
 * counts, without which custodian was heard from when, nor where the replicas are.
 */
function healthFor(body: Record<string, unknown>, reader: Reader | undefined): Record<string, unknown> {
  const replicas = (body.replicas ?? []) as { live?: boolean }[];
  const custodians = (body.custodians ?? []) as { lastContact?: string | null; secondsAgo?: number | null }[];
  const summary = {
    replicas: { total: replicas.length, live: replicas.filter((x) => x.live).length },
    custodians: {
      total: custodians.length,
      heardWithin5Minutes: custodians.filter((c) => c.secondsAgo != null && c.secondsAgo <= 300).length,
    },
  };
  if (reader && (reader.kind === "admin" || reader.kind === "custodian")) return { ...body, summary };
  const open = Object.fromEntries(
    Object.entries(body).filter(([k]) => k !== "replicas" && k !== "custodians"),
  );
  return { ...open, summary };
}

function revocationActor(req: express.Request, s: CoordinatorServices): RevocationActor {
  try {
    return { kind: "admin", name: authenticate(req, s.config.config.admins, "admin") };
  } catch {
    return { kind: "requester", name: authenticate(req, s.config.config.requesters, "requester or admin") };
  }
}

const REQUEST_LIMIT = "64kb";
const WaitQuery = z.object({ wait: decimalInt(0, MAX_WAIT_SECONDS).default(0) }).strict();
const ChangesQuery = z
  .object({
    after: decimalInt(0, Number.MAX_SAFE_INTEGER).default(0),
    wait: decimalInt(0, 30).default(25),
  })
  .strict();
const RawQuery = z
  .object({ profile: ProfileNameSchema, validityHours: decimalInt(1, MAX_VALIDITY_HOURS).optional() })
  .strict();
