// The coordinator's HTTP API as an OpenAPI 3.1 document, served at GET /api/v1/openapi.json.
//
// One source for the wire contract: every JSON body is a zod schema in src/protocol/ (views.ts,
// enums.ts, certificates.ts, signing-messages.ts, renewal.ts, …), the one the server checks input
// with and the clients parse answers with. The components below are generated from those schemas
// with zod 4's own `z.toJSONSchema` over a registry (target draft 2020-12, the dialect of OpenAPI
// 3.1 Schema Objects; registered schemas become `#/components/schemas/NAME` references, so each
// enumeration and shared object appears once). zod's converter covers everything these schemas
// use, so no third-party generator (such as @asteasolutions/zod-to-openapi) is needed. The paths
// are written by hand, because they are prose: summaries, descriptions, parameters and security.
// test/coordinator/openapi.test.ts checks that every route is documented, that the document is
// valid OpenAPI 3.1, and that real answers match the schemas documented for them.

import { COORDINATOR_ERROR_STATUS } from "../errors.ts";
import { z } from "zod";
import {
  CERTIFICATE_SORTS,
  CertificateDetailSchema,
  CertificateListSchema,
  CertificateStatusSchema,
  CertificateViewSchema,
  CSV_COLUMNS,
} from "../../protocol/certificates.ts";
import {
  ExchangeRequestSchema,
  ExchangeResponseSchema,
  SigningJobViewSchema,
} from "../../protocol/signing-messages.ts";
import {
  RenewalChallengeSchema,
  RenewalViewSchema,
  RenewBodySchema,
  RenewedSchema,
} from "../../protocol/renewal.ts";
import { AnnouncementSchema } from "../../protocol/announcement.ts";
import { SignedEnvelopeSchema } from "../../protocol/envelope.ts";
import { RevokeBodySchema } from "../../protocol/crl-params.ts";
import {
  CeremonyStatusSchema,
  DecisionSchema,
  DkgMessageTypeSchema,
  RequestStatusSchema,
  SanTypeSchema,
  SigningEventKindSchema,
} from "../../protocol/enums.ts";
import { CeremonyMessagesSchema, CeremonyViewSchema } from "../../protocol/ceremony-views.ts";
import {
  ApprovalViewSchema,
  ChangesSchema,
  DecisionCountedSchema,
  HealthSchema,
  HeartbeatAnswerSchema,
  LiveSchema,
  ProblemSchema,
  RequestListSchema,
  RequestViewSchema,
  RevokedSchema,
  SanSchema,
  SigningEventSchema,
  SubmitResponseSchema,
} from "../../protocol/views.ts";
import { SubmitBodySchema } from "../../protocol/submit.ts";
import { AUDIT_PAGE_MAX, AuditPageSchema } from "../../protocol/audit.ts";
import { CheckpointRequestSchema } from "../../protocol/audit-checkpoint.ts";
import { CaCsrViewSchema, CaInstalledSchema, InstallCaCertBodySchema } from "../../protocol/ca-csr.ts";
import {
  LifecycleMessagesSchema,
  LifecycleMessageTypeSchema,
  LifecycleStartSchema,
  LifecycleViewSchema,
  RosterViewSchema,
} from "../../protocol/lifecycle.ts";
import { RosterSignatureSubmitSchema } from "../../protocol/roster.ts";
import { CreateEabKeyBodySchema, EabKeyCreatedSchema, EabKeyListSchema } from "../../protocol/acme-eab.ts";

type Json = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: Json;
  servers?: Json[];
  tags: Json[];
  paths: Record<string, Record<string, Json>>;
  components: {
    schemas: Record<string, Json>;
    responses: Record<string, Json>;
    securitySchemes: Record<string, Json>;
  };
}

/**
 * The component schemas, generated. Answers are converted as zod outputs, request bodies as inputs
 * (a field with a default is optional to send); each group is one registry, so a schema used by
 * another becomes a $ref to its component. The Problem's `code` lists the server's error codes.
 */
const ANSWERS: Record<string, z.ZodType> = {
  RequestStatus: RequestStatusSchema,
  CeremonyStatus: CeremonyStatusSchema,
  DkgMessageType: DkgMessageTypeSchema,
  Decision: DecisionSchema,
  SanType: SanTypeSchema,
  SigningEventKind: SigningEventKindSchema,
  CertificateStatus: CertificateStatusSchema,
  Problem: ProblemSchema.extend({
    code: z
      .enum(Object.keys(COORDINATOR_ERROR_STATUS) as [string, ...string[]])
      .meta({ description: "stable machine-readable code" }),
  }),
  Health: HealthSchema,
  Live: LiveSchema,
  Changes: ChangesSchema,
  San: SanSchema,
  Approval: ApprovalViewSchema,
  SigningEvent: SigningEventSchema,
  RequestView: RequestViewSchema,
  RequestList: RequestListSchema,
  SubmitResponse: SubmitResponseSchema,
  DecisionCounted: DecisionCountedSchema,
  SignedEnvelope: SignedEnvelopeSchema,
  Announcement: AnnouncementSchema,
  CeremonyView: CeremonyViewSchema,
  CeremonyMessages: CeremonyMessagesSchema,
  HeartbeatAnswer: HeartbeatAnswerSchema,
  SigningJobView: SigningJobViewSchema,
  ExchangeResponse: ExchangeResponseSchema,
  CertificateView: CertificateViewSchema,
  CertificateDetail: CertificateDetailSchema,
  CertificateList: CertificateListSchema,
  Revoked: RevokedSchema,
  RenewalChallenge: RenewalChallengeSchema,
  Renewed: RenewedSchema,
  RenewalView: RenewalViewSchema,
  EabKeyCreated: EabKeyCreatedSchema,
  EabKeyList: EabKeyListSchema,
  AuditPage: AuditPageSchema,
  CheckpointRequest: CheckpointRequestSchema,
  CaCsrView: CaCsrViewSchema,
  CaInstalled: CaInstalledSchema,
  LifecycleMessageType: LifecycleMessageTypeSchema,
  LifecycleView: LifecycleViewSchema,
  LifecycleMessages: LifecycleMessagesSchema,
  RosterView: RosterViewSchema,
};
const BODIES: Record<string, z.ZodType> = {
  SubmitRequest: SubmitBodySchema,
  ExchangeRequest: ExchangeRequestSchema,
  RevokeRequest: RevokeBodySchema,
  RenewRequest: RenewBodySchema,
  CreateEabKeyRequest: CreateEabKeyBodySchema,
  InstallCaCertRequest: InstallCaCertBodySchema,
  LifecycleStart: LifecycleStartSchema,
  RosterSignatureSubmit: RosterSignatureSubmitSchema,
};

function generate(group: Record<string, z.ZodType>, io: "input" | "output"): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(group)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    io,
    target: "draft-2020-12",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }).schemas as Record<string, Json>;
  for (const json of Object.values(out)) {
    delete json.$schema;
    delete json.$id;
  }
  return out;
}

const schemas: Record<string, Json> = { ...generate(ANSWERS, "output"), ...generate(BODIES, "input") };

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (schema: Json): Json => ({ "application/json": { schema } });

/** Problem responses by status, each pointing at the shared problem+json response. */
const PROBLEMS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  413: "PayloadTooLarge",
  415: "UnsupportedMediaType",
  422: "Unprocessable",
  429: "TooManyRequests",
  500: "Internal",
};
function problems(...statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  // Every route is rate limited (README: limits): 429 can answer any of them.
  for (const s of [...statuses, 429, 500]) out[String(s)] = { $ref: `#/components/responses/${PROBLEMS[s]}` };
  return out;
}

const serialParam: Json = {
  name: "serial",
  in: "path",
  required: true,
  description: "hexadecimal, as tca prints it or as openssl does (0x, colons, any case, with or without 00)",
  schema: { type: "string", pattern: "^(0x)?[0-9a-fA-F:]+$" },
};
const idParam = (what: string): Json => ({
  name: "id",
  in: "path",
  required: true,
  description: `the ${what} id`,
  schema: { type: "string" },
});
const uuidParam = (what: string): Json => ({
  name: "id",
  in: "path",
  required: true,
  description: `the ${what} id (a UUID)`,
  schema: { type: "string", format: "uuid" },
});

const NAME_PATTERN = "^[a-z][a-z0-9-]{0,31}$";
const problemResponse = (description: string): Json => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem") } },
});

const REQUEST_RAW_TYPES = [
  "application/pkcs10",
  "application/x-pem-file",
  "application/octet-stream",
  "text/plain",
];
const requesterAuth = [{ bearer: [] }];
/** Reads (docs/security-model.md): an admin or requester token, or a custodian's signed read. */
const anyReader = [{ bearer: [] }, { signedRead: [] }];
/** Admin token or a custodian's signed read (a requester token gets 403). */
const custodianOrAdmin = [{ bearer: [] }, { signedRead: [] }];

export const openApiDocument: OpenApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "tca coordinator API",
    version: "1",
    summary:
      "A threshold certificate authority: requesters submit CSRs, custodians approve and sign with FROST.",
    description:
      "The coordinator holds no key material. It stores requests, builds TBSCertificates, relays custodians' signed messages and " +
      "publishes certificates. Errors are RFC 9457 problem+json. The CA certificate and health are public; submitting requests " +
      "needs a requester bearer token and starting a key ceremony an admin token (ca-config stores SHA-256 hashes of both). " +
      "Custodian endpoints take envelopes signed by roster identity keys instead of tokens. Reads are authenticated " +
      "(docs/security-model.md): a requester token reads only that requester's requests and certificates (another's is 404), " +
      "a custodian's TCA-Signed read reads requests, ceremonies, signing jobs and the change feed, an admin token reads " +
      "everything including /metrics. Public: /ca.pem, /ca.crt, /crl, /crl.pem, /api/v1/health (counts only), " +
      "/api/v1/health/live, this document.",
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  tags: [
    { name: "public", description: "Unauthenticated: CA certificate, CRL, health, this document" },
    { name: "requests", description: "Certificate requests: submit (requester token), follow, fetch" },
    { name: "custodians", description: "Signed custodian messages: approvals, DKG, signing" },
    { name: "ceremonies", description: "The key ceremony (DKG) that creates the CA key" },
    {
      name: "lifecycle",
      description:
        "Refresh, reshare and repair of the CA key's shares, and roster changes (docs/key-lifecycle.md)",
    },
    {
      name: "certificates",
      description: "The inventory of issued certificates: list, search, export, fetch",
    },
    {
      name: "acme",
      description:
        "ACME (RFC 8555) is served at /acme/directory when ca-config has an acme section (docs/acme.md); " +
        "these admin routes manage its external account binding keys",
    },
  ],
  paths: {
    "/ca.pem": {
      get: {
        tags: ["public"],
        operationId: "getCaPem",
        summary: "The CA certificate, PEM",
        responses: {
          "200": {
            description: "the root certificate",
            content: { "application/x-pem-file": { schema: { type: "string" } } },
          },
          ...problems(404),
        },
      },
    },
    "/ca.crt": {
      get: {
        tags: ["public"],
        operationId: "getCaDer",
        summary: "The CA certificate, DER",
        responses: {
          "200": {
            description: "the root certificate",
            content: {
              "application/pkix-cert": {
                schema: { type: "string", contentMediaType: "application/pkix-cert" },
              },
            },
          },
          ...problems(404),
        },
      },
    },
    "/ca-chain.pem": {
      get: {
        tags: ["public"],
        operationId: "getCaChainPem",
        summary:
          "The CA certificate and, in intermediate mode, the chain above it up to the external root (docs/intermediate.md)",
        responses: {
          "200": {
            description: "PEM certificates, the CA's first",
            content: { "application/pem-certificate-chain": { schema: { type: "string" } } },
          },
          ...problems(404),
        },
      },
    },
    "/api/v1/ca/csr": {
      post: {
        tags: ["custodians"],
        operationId: "proposeCaCsr",
        summary:
          "Propose a certification request for the CA key, for an external root to certify (admin; docs/intermediate.md)",
        description:
          "201 with a new proposal; 200 with the one still waiting for approvals or signing. Custodians " +
          "approve its subject, t of them sign it; then GET it with ?format=pem.",
        security: [{ bearer: [] }],
        responses: {
          "201": { description: "a new proposal", content: jsonContent(ref("CaCsrView")) },
          "200": { description: "the proposal in flight", content: jsonContent(ref("CaCsrView")) },
          ...problems(401, 409),
        },
      },
    },
    "/api/v1/ca/csr/{id}": {
      get: {
        tags: ["custodians"],
        operationId: "getCaCsr",
        summary: "A CSR proposal (id or `current`), or with ?format=pem the signed CSR (admin or custodian)",
        security: custodianOrAdmin,
        parameters: [
          idParam("proposal"),
          { name: "format", in: "query", required: false, schema: { type: "string", enum: ["json", "pem"] } },
        ],
        responses: {
          "200": {
            description: "the proposal, or the signed CSR",
            content: {
              ...jsonContent(ref("CaCsrView")),
              "application/pkcs10": { schema: { type: "string" } },
            },
          },
          ...problems(400, 401, 403, 404, 409),
        },
      },
    },
    "/api/v1/ca/csr/{id}/approvals": {
      post: {
        tags: ["custodians"],
        operationId: "decideCaCsr",
        summary:
          "A custodian's signed decision on a CSR proposal (an approval envelope in the ca-csr domain)",
        parameters: [uuidParam("proposal")],
        requestBody: { required: true, content: jsonContent(ref("SignedEnvelope")) },
        responses: {
          "202": { description: "the decision counted", content: jsonContent(ref("CaCsrView")) },
          ...problems(400, 404, 409, 415),
        },
      },
    },
    "/api/v1/ca/certificate": {
      post: {
        tags: ["custodians"],
        operationId: "installCaCertificate",
        summary:
          "Install the certificate an external root issued for the CA key, with its chain (admin; docs/intermediate.md)",
        description:
          "422 names the first failed check: another key, not a CA, another subject, a chain that does " +
          "not verify up to a self-signed root, a certificate not valid now, a root other than ca.externalRoot.",
        security: [{ bearer: [] }],
        requestBody: { required: true, content: jsonContent(ref("InstallCaCertRequest")) },
        responses: {
          "200": { description: "installed", content: jsonContent(ref("CaInstalled")) },
          ...problems(400, 401, 409, 422),
        },
      },
    },
    "/crl": {
      get: {
        tags: ["public"],
        operationId: "getCrlDer",
        summary: "The current CRL, DER (the URL in every certificate's CRL distribution point)",
        responses: {
          "200": {
            description: "the latest threshold-signed CRL",
            content: { "application/pkix-crl": { schema: { type: "string" } } },
          },
          ...problems(404),
        },
      },
    },
    "/crl.pem": {
      get: {
        tags: ["public"],
        operationId: "getCrlPem",
        summary: "The current CRL, PEM",
        responses: {
          "200": {
            description: "the latest threshold-signed CRL",
            content: { "application/x-pem-file": { schema: { type: "string" } } },
          },
          ...problems(404),
        },
      },
    },
    "/ocsp": {
      post: {
        tags: ["public"],
        operationId: "ocspPost",
        summary: "OCSP (RFC 6960 Appendix A.1): the status of certificates this CA issued (docs/ocsp.md)",
        description:
          "The DER OCSPRequest as body (application/ocsp-request, at most 4 KiB). Answered with HTTP 200 " +
          "and an OCSPResponse whatever its status: successful (good, revoked with time and reason, or unknown " +
          "per certificate; a nonce echoed, RFC 8954), malformedRequest, tryLater (no responder certificate " +
          "yet) or unauthorized (OCSP off here, or no CertID names this CA). Signed by the delegated responder " +
          "certificate the CA issued (id-kp-OCSPSigning, id-pkix-ocsp-nocheck), sent in certs. Also over " +
          "plain HTTP when TLS is on.",
        requestBody: {
          required: true,
          content: { "application/ocsp-request": { schema: { type: "string", format: "binary" } } },
        },
        responses: {
          "200": {
            description: "a DER OCSPResponse",
            content: { "application/ocsp-response": { schema: { type: "string", format: "binary" } } },
          },
          ...problems(413),
        },
      },
    },
    "/ocsp/{request}": {
      get: {
        tags: ["public"],
        operationId: "ocspGet",
        summary:
          "OCSP by GET (RFC 6960 Appendix A.1, RFC 5019 §5): the request as URL-encoded base64 of its DER",
        description:
          "As POST /ocsp. A successful answer without a nonce carries Cache-Control max-age until its " +
          "nextUpdate (RFC 5019 §6.2); others are not to be cached.",
        parameters: [
          {
            name: "request",
            in: "path",
            required: true,
            description: "base64 (RFC 4648 §4) of the DER OCSPRequest, URL-encoded",
            schema: { type: "string" },
          },
        ],
        responses: {
          "200": {
            description: "a DER OCSPResponse",
            content: { "application/ocsp-response": { schema: { type: "string", format: "binary" } } },
          },
          ...problems(),
        },
      },
    },
    "/metrics": {
      get: {
        tags: ["ceremonies"],
        operationId: "getMetrics",
        security: [{ bearer: [] }],
        description: "Admin token only.",
        summary:
          "Prometheus metrics: requests by status, issuance latency, approvals, signing failures by custodian, CRLs",
        responses: {
          "200": {
            description: "Prometheus text exposition format",
            content: { "text/plain": { schema: { type: "string" } } },
          },
          ...problems(401, 403),
        },
      },
    },
    "/api/v1/changes": {
      get: {
        tags: ["custodians"],
        operationId: "waitForChange",
        summary: "Long-poll: answers when anything changed after `after`, or after `wait` seconds",
        description: "Any authenticated reader.",
        security: anyReader,
        parameters: [
          {
            name: "after",
            in: "query",
            required: false,
            schema: { type: "integer", minimum: 0, default: 0 },
          },
          {
            name: "wait",
            in: "query",
            required: false,
            schema: { type: "number", minimum: 0, maximum: 30, default: 25 },
          },
        ],
        responses: {
          "200": {
            description: "the current change sequence number",
            content: jsonContent(ref("Changes")),
          },
          ...problems(400, 401, 403),
        },
      },
    },
    "/api/v1/custodians/heartbeat": {
      post: {
        tags: ["custodians"],
        operationId: "heartbeat",
        summary: "A custodian's signed heartbeat (reported by /api/v1/health)",
        description:
          "An envelope of type heartbeat bound to the CA key id, whose body names the process ({role, instance}); its seq must be greater than the last one accepted from that process (409 otherwise).",
        requestBody: { required: true, content: jsonContent(ref("SignedEnvelope")) },
        responses: {
          "200": {
            description: "accepted",
            content: jsonContent(ref("HeartbeatAnswer")),
          },
          ...problems(400, 409, 413, 415),
        },
      },
    },
    "/api/v1/certificates/{serial}/revoke": {
      post: {
        tags: ["requests"],
        operationId: "revokeCertificate",
        summary:
          "Revoke a certificate (the requester that owns it, or an admin); a new CRL is then signed by the threshold",
        security: [{ bearer: [] }],
        parameters: [
          {
            name: "serial",
            in: "path",
            required: true,
            schema: { type: "string", pattern: "^(0x)?[0-9a-fA-F:]+$" },
          },
        ],
        requestBody: {
          required: false,
          description:
            "the reason, one of RFC 5280 §5.3.1's (default unspecified); certificateHold is not offered: a revocation is final (docs/revocation.md)",
          content: jsonContent(ref("RevokeRequest")),
        },
        responses: {
          "200": {
            description: "revoked",
            content: jsonContent(ref("Revoked")),
          },
          ...problems(400, 401, 403, 404, 409, 413, 415),
        },
      },
    },
    "/api/v1/certificates": {
      get: {
        tags: ["certificates"],
        operationId: "listCertificates",
        summary: "Issued certificates (revoked ones too), filtered, sorted, paged; JSON or CSV",
        description:
          "Keyset pagination: pass the answer's `next` as `cursor` with the same sort and filters until `next` is null; " +
          "certificates issued meanwhile never shift a page. Unknown parameters and bad values are 400 naming the parameter. " +
          "CSV (RFC 4180, CRLF, header row; cells a spreadsheet would read as a formula start with a single quote) carries " +
          "the next page's URL in a Link header (rel=next). An admin token or a custodian's signed read sees every " +
          "certificate, a requester token only its own.",
        security: anyReader,
        parameters: [
          {
            name: "serial",
            in: "query",
            required: false,
            description: "exactly this serial, in any written form",
            schema: { type: "string" },
          },
          {
            name: "q",
            in: "query",
            required: false,
            description: "a substring of the subject CN or of any SAN, case-insensitive",
            schema: { type: "string", minLength: 1, maxLength: 256 },
          },
          {
            name: "status",
            in: "query",
            required: false,
            description:
              "valid (issued, not revoked, notAfter in the future), expired (notAfter passed, not revoked) or revoked",
            schema: ref("CertificateStatus"),
          },
          {
            name: "profile",
            in: "query",
            required: false,
            description: "issued under this profile",
            schema: { type: "string" },
          },
          {
            name: "requester",
            in: "query",
            required: false,
            description:
              "requested by this requester (a requester reading sees only its own whatever this says)",
            schema: { type: "string" },
          },
          {
            name: "expiresBefore",
            in: "query",
            required: false,
            description: "notAfter before this RFC 3339 date-time (or date, 00:00 UTC)",
            schema: { type: "string" },
          },
          {
            name: "expiresAfter",
            in: "query",
            required: false,
            description: "notAfter after this RFC 3339 date-time (or date, 00:00 UTC)",
            schema: { type: "string" },
          },
          {
            name: "sort",
            in: "query",
            required: false,
            description: "issued or notAfter, a leading - for descending",
            schema: { type: "string", enum: [...CERTIFICATE_SORTS], default: "-issued" },
          },
          {
            name: "limit",
            in: "query",
            required: false,
            description: "page size",
            schema: { type: "integer", minimum: 1, maximum: 500, default: 100 },
          },
          {
            name: "cursor",
            in: "query",
            required: false,
            description: "the `next` of the previous page (same sort and filters)",
            schema: { type: "string" },
          },
          {
            name: "format",
            in: "query",
            required: false,
            description: "csv or json; else chosen by Accept (text/csv), JSON by default",
            schema: { type: "string", enum: ["json", "csv"] },
          },
        ],
        responses: {
          "200": {
            description: "a page of certificates, newest first by default",
            headers: {
              Link: {
                description: 'the next page: <URL>; rel="next" (absent on the last page)',
                schema: { type: "string" },
              },
            },
            content: {
              ...jsonContent(ref("CertificateList")),
              "text/csv": {
                schema: { type: "string", description: `header row: ${CSV_COLUMNS.join(",")}` },
              },
            },
          },
          ...problems(400, 401, 403),
        },
      },
    },
    "/api/v1/certificates/{serial}": {
      get: {
        tags: ["certificates"],
        operationId: "getCertificateBySerial",
        summary:
          "One issued certificate: its record with the PEM chain (JSON), the PEM chain, or the leaf's DER",
        description:
          "`?format=json|pem|der`, else by Accept: application/pem-certificate-chain (leaf first, then the CA), " +
          "application/pkix-cert (DER), JSON by default. A requester reading another requester's serial gets 404.",
        security: anyReader,
        parameters: [
          {
            name: "serial",
            in: "path",
            required: true,
            description:
              "the serial in any written form: hex, 0x, colons, any case, with or without the sign octet",
            schema: { type: "string", pattern: "^(0x)?[0-9a-fA-F:]+$" },
          },
          {
            name: "format",
            in: "query",
            required: false,
            description: "json, pem (chain, leaf first) or der (the leaf)",
            schema: { type: "string", enum: ["json", "pem", "der"] },
          },
        ],
        responses: {
          "200": {
            description: "the certificate",
            content: {
              ...jsonContent(ref("CertificateDetail")),
              "application/pem-certificate-chain": { schema: { type: "string" } },
              "application/pkix-cert": { schema: { type: "string", format: "binary" } },
            },
          },
          ...problems(400, 401, 403, 404),
        },
      },
    },
    "/api/v1/certificates/{serial}/renewal-challenge": {
      post: {
        tags: ["requests"],
        operationId: "renewalChallenge",
        summary: "A one-time challenge (5 minutes) to renew an issued, unrevoked, unexpired certificate",
        description:
          "No token: the renewal that uses it is authenticated by a signature with the certificate's key " +
          "(docs/revocation.md). 409 when the certificate is revoked, 403 when it has expired, 429 (Retry-After) " +
          "when it already has 5 unused, unexpired challenges.",
        parameters: [serialParam],
        responses: {
          "201": { description: "a fresh challenge", content: jsonContent(ref("RenewalChallenge")) },
          ...problems(400, 403, 404, 409, 429),
        },
      },
    },
    "/api/v1/certificates/{serial}/renew": {
      post: {
        tags: ["requests"],
        operationId: "renewCertificate",
        summary:
          "Renew a certificate: a new request for the same requester, profile, names and lifetime (the key may change)",
        description:
          "signature: base64, made with the current certificate's private key (RSA PKCS#1 v1.5 with SHA-256, ECDSA " +
          "with the curve's hash, Ed25519/Ed448) over the UTF-8 lines `tca/renewal/v1`, `serial=<lowercase hex>`, " +
          "`challenge=<challenge>`, `csr-sha256=<hex of SHA-256 of the CSR's DER>`, each ending in a newline. " +
          "The challenge is used up once the signature verifies, whatever follows. 409 when the certificate is " +
          "revoked or already has a pending, signing or issued renewal (named). The request then goes through the " +
          "custodians' approval like any other; follow it at GET /api/v1/renewals/{id} with the challenge as bearer.",
        parameters: [serialParam],
        requestBody: { required: true, content: jsonContent(ref("RenewRequest")) },
        responses: {
          "202": { description: "renewal submitted", content: jsonContent(ref("Renewed")) },
          ...problems(400, 403, 404, 409, 413, 415, 422),
        },
      },
    },
    "/api/v1/renewals/{id}": {
      get: {
        tags: ["requests"],
        operationId: "getRenewal",
        summary: "A renewal's progress, and its PEM chain once issued (long-poll with ?since=STATE&wait=S)",
        description: "Authorization: Bearer <the challenge the renewal used>. Any other credential: 404.",
        security: [{ bearer: [] }],
        parameters: [
          idParam("renewal (request)"),
          {
            name: "wait",
            in: "query",
            required: false,
            schema: { type: "integer", minimum: 0, maximum: 60 },
          },
          {
            name: "since",
            in: "query",
            required: false,
            schema: { type: "string", pattern: "^[a-z]{1,10}/[0-9]{1,3}$" },
          },
        ],
        responses: {
          "200": { description: "the renewal", content: jsonContent(ref("RenewalView")) },
          ...problems(400, 401, 404),
        },
      },
    },
    "/api/v1/health": {
      get: {
        tags: ["public"],
        operationId: "getHealth",
        summary: "Readiness: ready to issue (200), or initializing / database away (503, same body)",
        description:
          "Public. Anyone sees the status and counts; an admin token or a custodian's signed read also sees " +
          "the per-custodian and per-replica detail.",
        security: [{}, { bearer: [] }, { signedRead: [] }],
        responses: {
          "200": { description: "ready", content: jsonContent(ref("Health")) },
          "503": { description: "not ready", content: jsonContent(ref("Health")) },
        },
      },
    },
    "/api/v1/health/live": {
      get: {
        tags: ["public"],
        operationId: "getLiveness",
        summary: "Liveness: the process answers (200 whatever the database or CA state)",
        responses: {
          "200": {
            description: "live",
            content: jsonContent(ref("Live")),
          },
        },
      },
    },
    "/api/v1/openapi.json": {
      get: {
        tags: ["public"],
        operationId: "getOpenApi",
        summary: "This document",
        responses: {
          "200": { description: "the OpenAPI 3.1 document", content: jsonContent({ type: "object" }) },
        },
      },
    },
    "/api/v1/requests": {
      post: {
        tags: ["requests"],
        operationId: "submitRequest",
        summary: "Submit a CSR",
        description:
          'JSON {"csr": PEM, "profile": NAME}, or the CSR itself (PEM or DER) as the body with ?profile=NAME. Bodies are limited to 64 KiB ' +
          "and CSRs to 16 KiB. The CSR's signature, key type and size, names and the requested validity are checked against the " +
          "profile and the requester's grant; a refused CSR leaves no request behind.",
        security: requesterAuth,
        parameters: [
          {
            name: "profile",
            in: "query",
            required: false,
            description: "the profile, for a raw CSR body (required then)",
            schema: { type: "string", pattern: NAME_PATTERN },
          },
          {
            name: "validityHours",
            in: "query",
            required: false,
            description: "for a raw CSR body",
            schema: { type: "integer", minimum: 1, maximum: 876000 },
          },
        ],
        requestBody: {
          required: true,
          content: {
            "application/json": { schema: ref("SubmitRequest") },
            ...Object.fromEntries(
              REQUEST_RAW_TYPES.map((t) => [
                t,
                { schema: { type: "string", description: "a PKCS#10 CSR, PEM or DER" } },
              ]),
            ),
          },
        },
        responses: {
          "202": {
            description: "accepted; approvals are pending",
            headers: { Location: { description: "the request's URL", schema: { type: "string" } } },
            content: jsonContent(ref("SubmitResponse")),
          },
          ...problems(400, 401, 403, 409, 413, 415, 422),
        },
      },
      get: {
        tags: ["requests"],
        operationId: "listRequests",
        summary: "List requests (newest 200; a requester sees only its own)",
        security: anyReader,
        parameters: [
          {
            name: "status",
            in: "query",
            required: false,
            schema: ref("RequestStatus"),
          },
        ],
        responses: {
          "200": { description: "requests", content: jsonContent(ref("RequestList")) },
          ...problems(400, 401, 403),
        },
      },
    },
    "/api/v1/requests/{id}": {
      get: {
        tags: ["requests"],
        operationId: "getRequest",
        summary: "A request: status, approvals, TBS and who rejected it",
        security: anyReader,
        description:
          "With `since` (the state last seen, as `status/decisions`, e.g. `pending/1`) and `wait`, " +
          "answers as soon as the state differs, or after `wait` seconds (long-poll).",
        parameters: [
          uuidParam("request"),
          { name: "wait", in: "query", schema: { type: "number", minimum: 0, maximum: 60, default: 0 } },
          { name: "since", in: "query", schema: { type: "string", pattern: "^[a-z]{1,10}/\\d{1,3}$" } },
        ],
        responses: {
          "200": { description: "the request", content: jsonContent(ref("RequestView")) },
          ...problems(400, 401, 403, 404),
        },
      },
    },
    "/api/v1/requests/{id}/certificate": {
      get: {
        tags: ["requests"],
        operationId: "getCertificate",
        security: anyReader,
        summary: "The issued certificate as a PEM chain, leaf first",
        parameters: [
          uuidParam("request"),
          {
            name: "wait",
            in: "query",
            required: false,
            description: "seconds to wait for a pending request to be issued",
            schema: { type: "number", minimum: 0, maximum: 60, default: 0 },
          },
        ],
        responses: {
          "200": {
            description: "leaf certificate then the CA certificate",
            content: { "application/pem-certificate-chain": { schema: { type: "string" } } },
          },
          ...problems(400, 401, 403, 404, 409),
        },
      },
    },
    "/api/v1/requests/{id}/approvals": {
      post: {
        tags: ["custodians"],
        operationId: "decideRequest",
        summary: "A custodian's signed approval or rejection of one request's TBS",
        description:
          "The body is an `approval` envelope whose body is a tca/approval/v1 statement about the request's tbsSha256, the CA key id " +
          "and the ca-config digest. One rejection is final. Once `threshold` custodians approve, a signing job starts among them.",
        parameters: [uuidParam("request")],
        requestBody: { required: true, content: jsonContent(ref("SignedEnvelope")) },
        responses: {
          "202": {
            description:
              "recorded; the request as it now stands (RequestView) to a custodian's signed read or an admin, " +
              "else only its id, status and how many approvals are missing",
            content: jsonContent({ oneOf: [ref("RequestView"), ref("DecisionCounted")] }),
          },
          ...problems(400, 401, 404, 409, 413, 415),
        },
      },
    },
    "/api/v1/ceremonies": {
      post: {
        tags: ["ceremonies"],
        operationId: "startCeremony",
        summary: "Start the key ceremony (admin)",
        security: [{ bearer: [] }],
        responses: {
          "201": {
            description: "the new ceremony and its announcement",
            content: jsonContent(ref("CeremonyView")),
          },
          ...problems(401, 409),
        },
      },
    },
    "/api/v1/ceremonies/{id}": {
      get: {
        tags: ["ceremonies"],
        operationId: "getCeremony",
        security: custodianOrAdmin,
        summary: 'A ceremony\'s stage and who has sent what ("current" names the latest)',
        parameters: [idParam("ceremony")],
        responses: {
          "200": { description: "the ceremony", content: jsonContent(ref("CeremonyView")) },
          ...problems(401, 403, 404),
        },
      },
    },
    "/api/v1/ceremonies/{id}/messages": {
      get: {
        tags: ["ceremonies"],
        operationId: "listCeremonyMessages",
        security: custodianOrAdmin,
        summary: "The signed DKG messages of one type (round-2 shares are HPKE ciphertext)",
        description:
          "With `wait`, a long-poll: answers as soon as every custodian has sent this type or the ceremony has ended, else after `wait` seconds.",
        parameters: [
          uuidParam("ceremony"),
          { name: "type", in: "query", required: true, schema: ref("DkgMessageType") },
          {
            name: "wait",
            in: "query",
            required: false,
            schema: { type: "number", minimum: 0, maximum: 30, default: 0 },
          },
        ],
        responses: {
          "200": {
            description: "messages",
            content: jsonContent(ref("CeremonyMessages")),
          },
          ...problems(400, 401, 403, 404),
        },
      },
      post: {
        tags: ["ceremonies", "custodians"],
        operationId: "postCeremonyMessage",
        summary: "A custodian's signed DKG message",
        parameters: [uuidParam("ceremony")],
        requestBody: { required: true, content: jsonContent(ref("SignedEnvelope")) },
        responses: {
          "202": {
            description: "accepted; the ceremony as it now stands",
            content: jsonContent(ref("CeremonyView")),
          },
          ...problems(400, 404, 409, 413, 415),
        },
      },
    },
    "/api/v1/roster": {
      get: {
        tags: ["lifecycle"],
        operationId: "getRoster",
        security: custodianOrAdmin,
        summary:
          "The key state in force (epoch, roster) and the roster changes on file with their signatures",
        responses: {
          "200": { description: "key state and roster changes", content: jsonContent(ref("RosterView")) },
          ...problems(401, 403),
        },
      },
    },
    "/api/v1/roster/signatures": {
      post: {
        tags: ["lifecycle", "custodians"],
        operationId: "postRosterSignature",
        summary: "A custodian's signature on a roster change (the signature authenticates it)",
        description:
          "The statement must start from the key state in force (caKeyId, from, basis: else 409 naming which " +
          "differs); the signer must be a custodian of the roster in force (else 403) and its signature must " +
          "verify (else 400). Sending the same signature again changes nothing. Answers the change with the " +
          "members whose signatures verify and whether it has the t it needs.",
        requestBody: { required: true, content: jsonContent(ref("RosterSignatureSubmit")) },
        responses: {
          "200": {
            description: "the change as it now stands",
            content: jsonContent({
              type: "object",
              properties: {
                change: { type: "object" },
                validSigners: { type: "array", items: { type: "string" } },
                approved: { type: "boolean" },
              },
              required: ["change", "validSigners", "approved"],
            }),
          },
          ...problems(400, 403, 409, 413, 415),
        },
      },
    },
    "/api/v1/lifecycle": {
      post: {
        tags: ["lifecycle"],
        operationId: "startLifecycle",
        summary: "Start a refresh, reshare or repair of the CA key's shares (admin; docs/key-lifecycle.md)",
        description:
          "409 while the CA has no key, the key ceremony or another lifecycle ceremony is in progress, this " +
          "coordinator's ca-config roster is not the roster in force, or (reshare, repair) no approved roster " +
          "change to `rosterDigest` is on file. 400 for dealers or helpers that are not exactly t members of the " +
          "roster in force, or a change that does not fit the kind.",
        security: [{ bearer: [] }],
        requestBody: { required: true, content: jsonContent(ref("LifecycleStart")) },
        responses: {
          "201": { description: "the plan, announced", content: jsonContent(ref("LifecycleView")) },
          ...problems(400, 401, 409, 413, 415),
        },
      },
    },
    "/api/v1/lifecycle/{id}": {
      get: {
        tags: ["lifecycle"],
        operationId: "getLifecycle",
        security: custodianOrAdmin,
        summary:
          'A lifecycle ceremony ("current" names the latest): plan, stage, who sent what, failure or result (admin, custodian or participant)',
        parameters: [idParam("lifecycle ceremony")],
        responses: {
          "200": { description: "the ceremony", content: jsonContent(ref("LifecycleView")) },
          ...problems(401, 403, 404),
        },
      },
    },
    "/api/v1/lifecycle/{id}/messages": {
      get: {
        tags: ["lifecycle"],
        operationId: "listLifecycleMessages",
        security: custodianOrAdmin,
        summary: "The signed lifecycle messages of one type (sealed values are HPKE ciphertext)",
        description:
          "With `wait`, a long-poll: answers as soon as every sender of this stage has sent it or the ceremony has ended, else after `wait` seconds.",
        parameters: [
          idParam("lifecycle ceremony"),
          { name: "type", in: "query", required: true, schema: ref("LifecycleMessageType") },
          {
            name: "wait",
            in: "query",
            required: false,
            schema: { type: "number", minimum: 0, maximum: 30, default: 0 },
          },
        ],
        responses: {
          "200": { description: "messages", content: jsonContent(ref("LifecycleMessages")) },
          ...problems(400, 401, 403, 404),
        },
      },
      post: {
        tags: ["lifecycle", "custodians"],
        operationId: "postLifecycleMessage",
        summary:
          "A participant's signed lifecycle message (taken only from the senders of the stage in progress)",
        parameters: [idParam("lifecycle ceremony")],
        requestBody: { required: true, content: jsonContent(ref("SignedEnvelope")) },
        responses: {
          "202": {
            description: "accepted; the ceremony as it now stands",
            content: jsonContent(ref("LifecycleView")),
          },
          ...problems(400, 403, 404, 409, 413, 415),
        },
      },
    },
    "/api/v1/lifecycle/{id}/cancel": {
      post: {
        tags: ["lifecycle"],
        operationId: "cancelLifecycle",
        summary: "Cancel a lifecycle ceremony in progress (admin; docs/key-lifecycle.md)",
        description:
          'Fails the ceremony with "cancelled by an admin: <reason>", blaming no one; nothing it made is used and ' +
          "the shares in force keep working. The body is optional. 409 if the ceremony is already complete or failed.",
        security: [{ bearer: [] }],
        parameters: [idParam("lifecycle ceremony")],
        requestBody: {
          required: false,
          content: jsonContent({
            type: "object",
            additionalProperties: false,
            properties: { reason: { type: "string", minLength: 1, maxLength: 500 } },
          }),
        },
        responses: {
          "200": { description: "the ceremony, failed", content: jsonContent(ref("LifecycleView")) },
          ...problems(400, 401, 404, 409, 413, 415),
        },
      },
    },
    "/api/v1/signing/jobs/{id}": {
      get: {
        tags: ["custodians"],
        operationId: "getSigningJob",
        security: custodianOrAdmin,
        summary: "One signing job: TBS, parameters, commitments and the signing package",
        parameters: [idParam("signing job")],
        responses: {
          "200": { description: "the job", content: jsonContent(ref("SigningJobView")) },
          ...problems(401, 403, 404),
        },
      },
    },
    "/api/v1/audit": {
      get: {
        tags: ["custodians"],
        operationId: "getAudit",
        security: custodianOrAdmin,
        summary: "A page of the hash-chained audit log, in order, and its head (docs/audit.md)",
        description:
          "Entries with seq > after, at most limit. Export them all with `tca audit export`; " +
          "check them offline with `tca audit verify`.",
        parameters: [
          {
            name: "after",
            in: "query",
            description: "the last seq already read (0: from the start)",
            schema: { type: "integer", minimum: 0, default: 0 },
          },
          {
            name: "limit",
            in: "query",
            description: "the most entries to answer",
            schema: { type: "integer", minimum: 1, maximum: AUDIT_PAGE_MAX, default: 200 },
          },
        ],
        responses: {
          "200": { description: "entries and the head", content: jsonContent(ref("AuditPage")) },
          ...problems(400, 401, 403),
        },
      },
    },
    "/api/v1/audit/checkpoints": {
      post: {
        tags: ["custodians"],
        operationId: "requestAuditCheckpoint",
        summary: "Ask the custodians to threshold-sign the audit chain's head now (admin; docs/audit.md)",
        description:
          "202 when a checkpoint job started for the current head; 200 when one is already running " +
          "(in-progress) or nothing was appended since the last checkpoint (current). The `checkpoint` " +
          "entry is appended once t custodians have signed and the signature verifies under the CA key.",
        security: [{ bearer: [] }],
        responses: {
          "202": { description: "a checkpoint job started", content: jsonContent(ref("CheckpointRequest")) },
          "200": {
            description: "a checkpoint job is running, or the last checkpoint is current",
            content: jsonContent(ref("CheckpointRequest")),
          },
          ...problems(401, 409),
        },
      },
    },
    "/api/v1/acme/eab-keys": {
      post: {
        tags: ["acme"],
        operationId: "createEabKey",
        summary:
          "Make an external account binding key (RFC 8555 §7.3.4) for a requester: the ACME account it binds acts under that grant",
        description:
          "Admin token. The requester must be in ca-config and granted one of acme.profiles (422 otherwise). " +
          "The HMAC key is in this answer only; it binds one account, once, and is then erased.",
        security: [{ bearer: [] }],
        requestBody: { required: true, content: jsonContent(ref("CreateEabKeyRequest")) },
        responses: {
          "201": { description: "the key, shown once", content: jsonContent(ref("EabKeyCreated")) },
          ...problems(400, 401, 403, 404, 415, 422),
        },
      },
      get: {
        tags: ["acme"],
        operationId: "listEabKeys",
        summary: "The external account binding keys, without their HMAC, and the account each is bound to",
        security: [{ bearer: [] }],
        responses: {
          "200": { description: "the keys", content: jsonContent(ref("EabKeyList")) },
          ...problems(401, 403, 404),
        },
      },
    },
    "/api/v1/acme/eab-keys/{keyId}": {
      delete: {
        tags: ["acme"],
        operationId: "deleteEabKey",
        summary: "Delete an external account binding key that has not bound an account (409 once it has)",
        security: [{ bearer: [] }],
        parameters: [
          {
            name: "keyId",
            in: "path",
            required: true,
            schema: { type: "string", pattern: "^[A-Za-z0-9_-]{22}$" },
          },
        ],
        responses: { "204": { description: "deleted" }, ...problems(401, 403, 404, 409) },
      },
    },
    "/api/v1/custodians/exchange": {
      post: {
        tags: ["custodians"],
        operationId: "exchange",
        summary: "A custodian process's batch of signed envelopes in, its work out (long-poll)",
        description:
          "Carries approvals, commitment offers, signature shares, refusals and withdrawals, each a " +
          "signed envelope judged on its own (see results). Answers with the signing tasks whose " +
          "package names this process's commitments, the requests for it to review, and which of its " +
          "offers are still open; with wait > 0 it holds the answer until there is work or wait runs out. " +
          "Its answer lists requests to review, so it needs the custodian's signed read (for POST and " +
          "this path), and `custodian` must name the signer (403 otherwise).",
        security: [{ signedRead: [] }],
        requestBody: { required: true, content: jsonContent(ref("ExchangeRequest")) },
        responses: {
          "200": { description: "this process's work", content: jsonContent(ref("ExchangeResponse")) },
          ...problems(400, 401, 403, 413, 415),
        },
      },
    },
  },
  components: {
    schemas,
    responses: {
      BadRequest: problemResponse(
        "The request is malformed: not JSON, a missing or invalid field, a CSR that does not parse or whose signature does not verify.",
      ),
      Unauthorized: {
        ...problemResponse(
          "No credentials, a bearer token that matches no entry in ca-config, or a signed read that is malformed, " +
            "from a key not in the roster, for another method or path, older or newer than 60 s, or already used.",
        ),
        headers: {
          "WWW-Authenticate": {
            description: 'the schemes accepted: Bearer realm="tca", TCA-Signed realm="tca"',
            schema: { type: "string" },
          },
        },
      },
      Forbidden: problemResponse(
        "The token is valid but not granted this (e.g. the profile, or a read a requester may not make), or the custodian may not take part.",
      ),
      NotFound: problemResponse("No such request, ceremony, job or certificate."),
      Conflict: problemResponse(
        "The resource is not in a state that allows this (e.g. already rejected, not issued yet, no CA key yet).",
      ),
      PayloadTooLarge: problemResponse("The body or the CSR is larger than this endpoint accepts."),
      UnsupportedMediaType: problemResponse("The Content-Type is not one this endpoint reads."),
      Unprocessable: problemResponse(
        "Well-formed but refused by policy: key type or size, names, SAN types, validity.",
      ),
      TooManyRequests: {
        ...problemResponse(
          "Rate limited (per client IP or per bearer token): retry after the number of seconds in Retry-After.",
        ),
        headers: {
          "Retry-After": { description: "seconds to wait", schema: { type: "integer", minimum: 1 } },
        },
      },
      Internal: problemResponse("The coordinator hit an internal error; details are in its log only."),
    },
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description:
          "A requester token (submit; read its own requests and certificates) or an admin token (start a ceremony; read " +
          "everything, /metrics too). ca-config stores only their SHA-256 hashes.",
      },
      signedRead: {
        type: "http",
        scheme: "TCA-Signed",
        description:
          "A custodian's signed read (src/protocol/signed-read.ts): `Authorization: TCA-Signed <payload>.<signature>`, " +
          "base64url of the canonical JSON {v: 1, sender, method, path (pathname and query), issuedAt, nonce (128-bit hex)} " +
          'and of its Ed25519 signature by the sender\'s roster identity key over "tca/signed-read/v1\\n" followed by the ' +
          "payload bytes. Accepted within ±60 s of the coordinator's clock, once.",
      },
    },
  },
};
