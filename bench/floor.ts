// The single-key floor of `npm run bench` (docs/benchmarks.md, section (b)): the coordinator's per-request
// HTTP work with the threshold replaced by one in-process Ed25519 key. It exists ONLY in bench/: the real
// coordinator never holds a CA key (docs/architecture.md §3.8; src/ must never sign with one).
//
// Per request it does what the coordinator does on submit and issue: bearer-token check, body
// limit + JSON + zod parse, parseCsr (signature verified), checkRequest, checkValidity,
// buildLeafTbs with the CA's config and certificate, then sign (node:crypto Ed25519, RFC 8032),
// assembleCertificate, verify the signature and parse the result again, and serve the PEM chain from
// the same two routes. It leaves out what a threshold CA needs beyond that: the database, approvals,
// custodians, FROST sessions and waiting for them (see docs/benchmarks.md).
import "reflect-metadata";
import express from "express";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  createHash,
  generateKeyPairSync,
  randomUUID,
  sign,
  timingSafeEqual,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { z } from "zod";
import type { LoadedConfig } from "../src/config/load.ts";
import type { Requester } from "../src/config/schema.ts";
import { parseCsr } from "../src/x509/csr.ts";
import { checkRequest, checkValidity } from "../src/x509/policy.ts";
import { buildLeafTbs } from "../src/x509/leaf.ts";
import { buildRootTbs } from "../src/x509/root.ts";
import { readCaCert } from "../src/x509/ca-cert.ts";
import { randomSerial } from "../src/x509/serial.ts";
import { assembleCertificate, verifyCertificateSignature } from "../src/x509/assemble.ts";
import { toPem } from "../src/x509/der.ts";
import { X509Error } from "../src/x509/errors.ts";

/** Same limits and shapes as the coordinator's routes (src/coordinator/http/routes.ts). */
const MAX_CSR_BYTES = 16 * 1024;
const BACKDATE_MS = 60_000;
const SubmitBody = z
  .object({
    csr: z.string().min(1).max(60_000),
    profile: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    validityHours: z.coerce.number().int().positive().max(876_000).optional(),
  })
  .strict();
const WaitQuery = z.object({ wait: z.coerce.number().min(0).max(60).default(0) }).strict();

export interface FloorCa {
  url: string;
  /** The floor's own self-signed root (same subject and config as the CA under test), PEM. */
  rootPem: string;
  close(): Promise<void>;
}

function rawEd25519(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x!, "base64url"));
}

function problem(res: express.Response, status: number, detail: string): void {
  res.status(status).type("application/problem+json").json({ status, title: "error", detail });
}

/** Starts the floor on 127.0.0.1 (port 0 = any free port). */
export async function startFloor(loaded: LoadedConfig, port = 0): Promise<FloorCa> {
  const config = loaded.config;
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const caPublicRaw = rawEd25519(publicKey);
  const now = Date.now();
  const rootTbs = buildRootTbs({
    subject: config.ca.subject,
    caPublicKey: caPublicRaw,
    serial: randomSerial(),
    notBefore: new Date(Math.floor(now / 1000) * 1000),
    notAfter: new Date(Math.floor(now / 1000) * 1000 + 10 * 365 * 86_400_000),
  });
  const caDer = assembleCertificate(rootTbs, new Uint8Array(sign(null, rootTbs, privateKey)));
  const ca = readCaCert(caDer);
  const rootPem = toPem(caDer, "CERTIFICATE");
  const requesters = config.requesters.map((r) => ({ r, hash: Buffer.from(r.tokenSha256, "hex") }));
  const issued = new Map<string, string>();

  const app = express();
  app.disable("x-powered-by");
  const requesterAuth: express.RequestHandler = (req, res, next) => {
    const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(req.get("authorization") ?? "");
    const h = m ? createHash("sha256").update(m[1]!, "utf8").digest() : undefined;
    const hit = h && requesters.find((e) => e.hash.length === h.length && timingSafeEqual(e.hash, h));
    if (!hit) return problem(res, 401, "requester token required");
    res.locals.requester = hit.r;
    next();
  };
  app.post("/api/v1/requests", requesterAuth, express.json({ limit: "64kb" }), (req, res) => {
    const requester = res.locals.requester as Requester;
    const b = SubmitBody.safeParse(req.body);
    if (!b.success) return problem(res, 400, "invalid request body");
    const profile = config.profiles[b.data.profile];
    if (!profile || !requester.profiles.includes(b.data.profile))
      return problem(res, 403, "profile not granted");
    const serial = randomSerial();
    const notBefore = new Date(Math.floor((Date.now() - BACKDATE_MS) / 1000) * 1000);
    let notAfter = new Date(
      notBefore.getTime() + (b.data.validityHours ?? profile.defaultValidityHours) * 3_600_000,
    );
    if (notAfter > ca.notAfter && b.data.validityHours === undefined) notAfter = ca.notAfter;
    let cert: Uint8Array;
    try {
      const csr = parseCsr(b.data.csr, { maxBytes: MAX_CSR_BYTES });
      checkRequest(csr, profile, requester);
      checkValidity({ notBefore, notAfter, profile, caNotAfter: ca.notAfter });
      const tbs = buildLeafTbs({
        csr,
        profile,
        caCertDer: caDer,
        serial,
        notBefore,
        notAfter,
        publicUrl: config.ca.publicUrl,
      });
      cert = assembleCertificate(tbs, new Uint8Array(sign(null, tbs, privateKey)));
    } catch (e) {
      if (e instanceof X509Error) return problem(res, 422, e.message);
      throw e;
    }
    // The coordinator's release check: verify against the CA key and parse the DER again.
    const serialHex = Buffer.from(serial).toString("hex").replace(/^0+/, "");
    if (
      !verifyCertificateSignature(cert, caPublicRaw) ||
      new X509Certificate(Buffer.from(cert)).serialNumber.toLowerCase().replace(/^0+/, "") !== serialHex
    )
      return problem(res, 500, "assembled certificate does not verify");
    const id = randomUUID();
    issued.set(id, toPem(cert, "CERTIFICATE") + rootPem);
    res.status(202).location(`/api/v1/requests/${id}`).json({ id, status: "issued", serial: serialHex });
  });
  app.get("/api/v1/requests/:id/certificate", (req, res) => {
    if (!WaitQuery.safeParse(req.query).success) return problem(res, 400, "wait must be 0-60 seconds");
    const pem = issued.get(String(req.params.id));
    if (!pem) return problem(res, 404, "no such request");
    res.type("application/pem-certificate-chain").send(pem);
  });
  app.get("/api/v1/health", (_req, res) => {
    res.json({ status: "ok", caKey: "ready" });
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, "127.0.0.1", () => resolve(s));
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    rootPem,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
