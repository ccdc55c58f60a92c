// The enumerations of the wire contract, each listed once. The zod schemas in src/protocol/ build
// on them, the coordinator's store types are derived from them, and the OpenAPI document
// (src/coordinator/http/openapi.ts) is generated from those schemas.
import { z } from "zod";

/** A certificate request's life: pending approvals, signing, then issued, rejected or failed. */
export const REQUEST_STATUSES = ["pending", "signing", "issued", "rejected", "failed"] as const;
export const RequestStatusSchema = z.enum(REQUEST_STATUSES);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

/** The key ceremony's stages (docs/architecture.md), then complete or failed. */
export const CEREMONY_STATUSES = [
  "round1",
  "round1-ack",
  "round2",
  "confirm",
  "root-signing",
  "complete",
  "failed",
] as const;
export const CeremonyStatusSchema = z.enum(CEREMONY_STATUSES);
export type CeremonyStatus = z.infer<typeof CeremonyStatusSchema>;

/** The envelope types of the key ceremony (DKG), as relayed at /api/v1/ceremonies/{id}/messages. */
export const DKG_MESSAGE_TYPES = [
  "dkg/round1",
  "dkg/round1-ack",
  "dkg/round2",
  "dkg/complaint",
  "dkg/confirm",
  "dkg/abort",
] as const;
export const DkgMessageTypeSchema = z.enum(DKG_MESSAGE_TYPES);
export type DkgMessageType = z.infer<typeof DkgMessageTypeSchema>;

/** Key lifecycle ceremonies (docs/key-lifecycle.md). */
export const LIFECYCLE_KINDS = ["refresh", "reshare", "repair"] as const;

/** The envelope types of a lifecycle ceremony, relayed at /api/v1/lifecycle/{id}/messages. */
export const LIFECYCLE_MESSAGE_TYPES = [
  "lc/round1",
  "lc/round1-ack",
  "lc/round2",
  "lc/round3",
  "lc/complaint",
  "lc/confirm",
  "lc/abort",
] as const;

/** A lifecycle ceremony's stages in order, then complete or failed. */
export const LIFECYCLE_STATUSES = [
  "round1",
  "round1-ack",
  "round2",
  "round3",
  "confirm",
  "complete",
  "failed",
] as const;

/** A custodian's decision on a request. */
export const DECISIONS = ["approve", "reject"] as const;
export const DecisionSchema = z.enum(DECISIONS);

/** The subjectAltName types tca reads from a CSR (RFC 5280 §4.2.1.6). */
export const SAN_TYPES = ["dns", "ip", "email", "uri"] as const;
export const SanTypeSchema = z.enum(SAN_TYPES);

/** One line of a signing job's history. "commitment" is only read: older tca versions wrote it. */
export const SIGNING_EVENT_KINDS = [
  "commitment",
  "package",
  "share",
  "bad-share",
  "refusal",
  "timeout",
  "withdrawn",
  "signed",
  "failed",
] as const;
export const SigningEventKindSchema = z.enum(SIGNING_EVENT_KINDS);
export type SigningEventKind = z.infer<typeof SigningEventKindSchema>;
