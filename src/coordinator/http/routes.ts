// The route table. Handlers parse, call one domain function, render.
import express, { type Router } from "express";
import { z } from "zod";
import type { CoordinatorServices } from "../services.ts";
import { CoordinatorError } from "../errors.ts";
import { authenticate } from "./auth.ts";
import { toPem } from "../../x509/der.ts";

const ENVELOPE_LIMIT = "256kb";
const CeremonyMessageType = z.enum(["dkg/round1", "dkg/round1-ack", "dkg/round2", "dkg/confirm", "dkg/complaint", "dkg/abort"]);
const Name = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

export function routes(s: CoordinatorServices): Router {
  const r = express.Router();
  const json = express.json({ limit: ENVELOPE_LIMIT });
  const requireJson: express.RequestHandler = (req, _res, next) => {
    if (req.body === undefined) throw new CoordinatorError("UNSUPPORTED_MEDIA_TYPE", "send a JSON body with Content-Type: application/json");
    next();
  };

  r.get("/api/v1/health", async (_req, res) => {
    res.json(await s.health());
  });

  const caCert = async () => {
    const der = await s.caCertificate();
    if (!der) throw new CoordinatorError("NOT_FOUND", "the CA has no root certificate yet: run the key ceremony first");
    return der;
  };
  r.get("/ca.pem", async (_req, res) => {
    res.type("application/x-pem-file").send(toPem(await caCert(), "CERTIFICATE"));
  });
  r.get("/ca.crt", async (_req, res) => {
    res.type("application/pkix-cert").send(Buffer.from(await caCert()));
  });

  r.post("/api/v1/ceremonies", async (req, res) => {
    authenticate(req, s.config.config.admins, "admin");
    res.status(201).json(await s.ceremonies.start());
  });
  r.get("/api/v1/ceremonies/:id", async (req, res) => {
    res.json(await s.ceremonies.view(String(req.params.id)));
  });
  r.get("/api/v1/ceremonies/:id/messages", async (req, res) => {
    const type = CeremonyMessageType.safeParse(req.query.type);
    if (!type.success) throw new CoordinatorError("BAD_REQUEST", "query parameter type must name a DKG message type");
    res.json({ messages: await s.ceremonies.messages(String(req.params.id), type.data) });
  });
  r.post("/api/v1/ceremonies/:id/messages", json, requireJson, async (req, res) => {
    res.status(202).json(await s.ceremonies.receive(String(req.params.id), req.body));
  });

  r.get("/api/v1/signing/jobs", async (req, res) => {
    const custodian = Name.safeParse(req.query.custodian);
    if (!custodian.success) throw new CoordinatorError("BAD_REQUEST", "query parameter custodian must be a roster name");
    res.json({ jobs: await s.signing.listFor(custodian.data) });
  });
  r.get("/api/v1/signing/jobs/:id", async (req, res) => {
    res.json(await s.signing.get(String(req.params.id)));
  });
  r.post("/api/v1/signing/jobs/:id/messages", json, requireJson, async (req, res) => {
    res.status(202).json(await s.signing.receive(String(req.params.id), req.body));
  });

  return r;
}
