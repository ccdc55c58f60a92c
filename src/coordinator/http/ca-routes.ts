// Intermediate mode's routes (docs/intermediate.md, src/coordinator/intermediate.ts):
//   POST /api/v1/ca/csr                    (admin) propose the CA key's certification request
//   GET  /api/v1/ca/csr/{id}               (admin, custodian) a proposal ("current": the last one);
//                                          ?format=pem gives the signed CSR itself
//   POST /api/v1/ca/csr/{id}/approvals     a custodian's signed decision (any relay)
//   POST /api/v1/ca/certificate            (admin) install the certificate the external root issued
//   GET  /ca-chain.pem                     (public) the CA certificate and the chain above it
import express, { type Router } from "express";
import type { CoordinatorServices } from "../services.ts";
import { CoordinatorError } from "../errors.ts";
import { authenticate, type Readers } from "./auth.ts";
import { toPem } from "../../x509/der.ts";
import { InstallCaCertBodySchema } from "../../protocol/ca-csr.ts";
import { caChainPem, IntermediateService } from "../intermediate.ts";

const LIMIT = "512kb";

export function caRoutes(r: Router, s: CoordinatorServices, readers: () => Readers): void {
  const json = express.json({ limit: LIMIT });
  // Built on first use: registering the routes touches no service (test/coordinator/openapi.test.ts).
  let svc: IntermediateService | undefined;
  const intermediate = () => (svc ??= new IntermediateService(s));

  r.get("/ca-chain.pem", async (_req, res) => {
    const der = await s.caCertificate();
    if (!der)
      throw new CoordinatorError("NOT_FOUND", "the CA has no certificate yet: run the key ceremony first");
    res
      .type("application/pem-certificate-chain")
      .send(toPem(der, "CERTIFICATE") + (await caChainPem(s.store)));
  });
  r.post("/api/v1/ca/csr", async (req, res) => {
    authenticate(req, s.config.config.admins, "admin");
    const out = await intermediate().create();
    res.status(out.created ? 201 : 200).json(out.view);
  });
  r.get("/api/v1/ca/csr/:id", async (req, res) => {
    await readers().require(req, ["admin", "custodian"], "the CA's certification request");
    const v = await intermediate().view(String(req.params.id));
    const format = req.query.format;
    if (format !== undefined && format !== "json" && format !== "pem")
      throw new CoordinatorError("BAD_REQUEST", "format must be json or pem");
    if (format !== "pem") return void res.json(v);
    if (!v.csr)
      throw new CoordinatorError(
        "CONFLICT",
        `CSR proposal ${v.id} is ${v.status}${v.failure ? ` (${v.failure})` : ""}: the CSR exists once it is signed`,
      );
    res.type("application/pkcs10").send(v.csr);
  });
  // The envelope authenticates the decision, not who sends it: the proposal as it now stands goes
  // to a reader who may see it; anyone else learns only its status.
  r.post("/api/v1/ca/csr/:id/approvals", json, async (req, res) => {
    if (req.body === undefined)
      throw new CoordinatorError("UNSUPPORTED_MEDIA_TYPE", "send the signed envelope as application/json");
    const reader = await readers()
      .resolve(req)
      .catch(() => undefined);
    const v = await intermediate().decide(String(req.params.id), req.body);
    res
      .status(202)
      .json(reader?.kind === "admin" || reader?.kind === "custodian" ? v : { id: v.id, status: v.status });
  });
  r.post("/api/v1/ca/certificate", json, async (req, res) => {
    const admin = authenticate(req, s.config.config.admins, "admin");
    const body = InstallCaCertBodySchema.safeParse(req.body);
    if (!body.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        'send JSON {"certificate": PEM, "chain": PEM (issuer first, up to the root)}',
      );
    res.json(await intermediate().install(body.data.certificate, body.data.chain, admin));
  });
}
