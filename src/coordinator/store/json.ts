// The JSON columns at the store's edge. Columns stay TEXT holding JSON on both databases (no
// dialect-specific JSON types), so databases written by earlier versions open unchanged; values are
// checked with their schemas as they are read, and a row that does not parse fails loudly, naming
// the table, column and row, rather than travelling on as a half-typed value.
import { SigningEventKindSchema } from "../../protocol/enums.ts";
import { z } from "zod";
import { AnnouncementSchema } from "../../protocol/announcement.ts";
import { LeafParamsSchema } from "../../protocol/approval.ts";
import { CrlParamsSchema } from "../../protocol/crl-params.ts";
import { CheckpointParamsSchema } from "../../protocol/audit-checkpoint.ts";
import {
  CaCsrParamsSchema,
  RootParamsSchema,
  SigningPackageSchema,
} from "../../protocol/signing-messages.ts";
import { canonicalJson } from "../../common/canonical-json.ts";
import { RequestOriginSchema, type RequestOrigin } from "../../protocol/origin.ts";
import type { Announcement } from "../../protocol/announcement.ts";
import type { SigningPackage } from "../../protocol/signing-messages.ts";
import type { CeremonyFailure, JobEvent, JobParams, RequestOutcome } from "./types.ts";

const JobEventSchema: z.ZodType<JobEvent> = z
  .object({
    at: z.string(),
    kind: SigningEventKindSchema,
    custodian: z.string().optional(),
    detail: z.string().optional(),
  })
  .strict();
const JobEventsSchema = z.array(JobEventSchema);
const NamesSchema = z.array(z.string());
const RequestOutcomeSchema: z.ZodType<RequestOutcome> = z
  .object({ by: z.string().optional(), reason: z.string() })
  .strict();
const CeremonyFailureSchema: z.ZodType<CeremonyFailure> = z
  .object({ reason: z.string(), culprits: z.array(z.string()) })
  .strict();

/** A row whose stored JSON does not parse or does not fit its schema. */
export class CorruptRowError extends Error {
  constructor(where: string, why: string) {
    super(`corrupt row in the database: ${where}: ${why}`);
    this.name = "CorruptRowError";
  }
}

function read<T>(schema: z.ZodType<T>, text: string, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CorruptRowError(where, `not JSON (${(e as Error).message})`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new CorruptRowError(where, z.prettifyError(r.error).replace(/\n/g, "; "));
  return r.data;
}

const json = (value: unknown): string => JSON.stringify(value);

// ---- signing_jobs ----
export const readEvents = (text: string, id: string): JobEvent[] =>
  read(JobEventsSchema, text, `signing_jobs.events of ${id}`);
export const writeEvents = (events: JobEvent[]): string => json(events);

export const readNames = (text: string, column: string, id: string): string[] =>
  read(NamesSchema, text, `signing_jobs.${column} of ${id}`);
export const writeNames = (names: string[]): string => json(names);

export const readPackage = (text: string | null, id: string): SigningPackage | null =>
  text === null ? null : read(SigningPackageSchema, text, `signing_jobs.signing_package of ${id}`);
export const writePackage = (pkg: SigningPackage | null): string | null => (pkg ? json(pkg) : null);

/** A job's kind and parameters, checked together: the kind says which schema the parameters fit. */
export function readJobParams(kind: string, text: string, id: string): JobParams {
  const where = `signing_jobs.params of ${id} (kind ${kind})`;
  switch (kind) {
    case "root":
      return { kind, params: read(RootParamsSchema, text, where) };
    case "leaf":
      return { kind, params: read(LeafParamsSchema, text, where) };
    case "crl":
      return { kind, params: read(CrlParamsSchema, text, where) };
    case "checkpoint":
      return { kind, params: read(CheckpointParamsSchema, text, where) };
    case "ca-csr":
      return { kind, params: read(CaCsrParamsSchema, text, where) };
    default:
      throw new CorruptRowError(`signing_jobs.kind of ${id}`, `unknown job kind "${kind}"`);
  }
}
export const writeJobParams = (p: JobParams): string => json(p.params);

// ---- requests ----
export const readOutcome = (text: string | null, id: string): RequestOutcome | null =>
  text === null ? null : read(RequestOutcomeSchema, text, `requests.outcome of ${id}`);
export const writeOutcome = (o: RequestOutcome | null): string | null => (o ? json(o) : null);

export const readOrigin = (text: string | null, id: string): RequestOrigin | null =>
  text === null ? null : read(RequestOriginSchema, text, `requests.origin of ${id}`);
export const writeOrigin = (o: RequestOrigin | null): string | null => (o ? json(o) : null);

// ---- ceremonies ----
export const readAnnouncement = (text: string, id: string): Announcement =>
  read(AnnouncementSchema, text, `ceremonies.announcement of ${id}`);
/** Canonical JSON, as tca has always stored it. */
export const writeAnnouncement = (a: Announcement): string => canonicalJson(a);

export const readFailure = (text: string | null, id: string): CeremonyFailure | null =>
  text === null ? null : read(CeremonyFailureSchema, text, `ceremonies.failure of ${id}`);
export const writeFailure = (f: CeremonyFailure | null): string | null => (f ? json(f) : null);
