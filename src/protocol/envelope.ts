// Signed envelopes (docs/architecture.md §3.3). The signature covers the exact bytes sent: a domain prefix
// and the canonical JSON of header + body. Receivers parse only after the signature checks, compare the
// context they expect (type, scope, recipient, CA key id) and remember message ids (replay).
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { signEd25519, verifyEd25519 } from "../common/ed25519.ts";
import { ProtocolError } from "./errors.ts";
import { DKG_MESSAGE_TYPES, LIFECYCLE_MESSAGE_TYPES } from "./enums.ts";

const DOMAIN = "tca/envelope/v1\n";

export const MESSAGE_TYPES = [
  ...DKG_MESSAGE_TYPES,
  ...LIFECYCLE_MESSAGE_TYPES,
  "sign/offer",
  "sign/share",
  "sign/refusal",
  "sign/withdraw",
  "approval",
  "heartbeat",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const EnvelopeHeaderSchema = z
  .object({
    v: z.literal(1),
    type: z.enum(MESSAGE_TYPES),
    sender: z.string().min(1).max(64),
    /** A roster name, "*" for every custodian, or "coordinator". */
    recipient: z.string().min(1).max(64),
    /** Ceremony id, request id or signing job id the message belongs to. */
    scope: z.string().min(1).max(128),
    /** SHA-256 of the CA SPKI once the key exists; null during the DKG that creates it. */
    caKeyId: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullable(),
    seq: z.number().int().nonnegative(),
    id: z.string().regex(/^[0-9a-f]{32}$/),
    issuedAt: z.string().datetime(),
    body: z.unknown(),
  })
  .strict();
export type EnvelopeHeader = z.infer<typeof EnvelopeHeaderSchema>;

export const SignedEnvelopeSchema = z
  .object({
    payload: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .max(1_000_000),
    signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  })
  .strict();
export type SignedEnvelope = z.infer<typeof SignedEnvelopeSchema>;

export interface Signer {
  name: string;
  signingSecret: Uint8Array;
}

let lastSeq = 0;
/** Strictly increasing per process, and across restarts (it starts from the clock). */
function nextSeq(): number {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return lastSeq;
}

const signedBytes = (payload: Uint8Array): Uint8Array => Buffer.concat([Buffer.from(DOMAIN), payload]);

export function sealEnvelope(
  signer: Signer,
  msg: { type: MessageType; recipient: string; scope: string; caKeyId: string | null; body: unknown },
): SignedEnvelope {
  const header: EnvelopeHeader = {
    v: 1,
    type: msg.type,
    sender: signer.name,
    recipient: msg.recipient,
    scope: msg.scope,
    caKeyId: msg.caKeyId,
    seq: nextSeq(),
    id: randomBytes(16).toString("hex"),
    issuedAt: new Date().toISOString(),
    body: msg.body,
  };
  const payload = Buffer.from(canonicalJson(header));
  const signature = signEd25519(signer.signingSecret, signedBytes(payload));
  return { payload: payload.toString("base64url"), signature: Buffer.from(signature).toString("base64url") };
}

export interface ExpectedContext {
  type?: MessageType | readonly MessageType[];
  scope?: string;
  recipient?: string;
  caKeyId?: string | null;
}

/**
 * Checks the signature against the sender's pinned key, then the context. `roster` maps names to
 * base64url Ed25519 public keys. Throws ProtocolError naming the sender where one can be blamed.
 */
export function openEnvelope(
  envelope: unknown,
  roster: ReadonlyMap<string, string>,
  expected: ExpectedContext = {},
): EnvelopeHeader {
  const outer = SignedEnvelopeSchema.safeParse(envelope);
  if (!outer.success)
    throw new ProtocolError("ENVELOPE_MALFORMED", "envelope is not {payload, signature} in base64url");
  const payload = Buffer.from(outer.data.payload, "base64url");
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch {
    throw new ProtocolError("ENVELOPE_MALFORMED", "envelope payload is not JSON");
  }
  const sender =
    typeof json === "object" && json !== null ? (json as { sender?: unknown }).sender : undefined;
  const key = typeof sender === "string" ? roster.get(sender) : undefined;
  if (typeof sender !== "string" || !key) {
    throw new ProtocolError(
      "ENVELOPE_UNKNOWN_SENDER",
      `envelope sender ${JSON.stringify(sender)} is not in the roster`,
    );
  }
  const ok = verifyEd25519(
    Buffer.from(outer.data.signature, "base64url"),
    signedBytes(payload),
    Buffer.from(key, "base64url"),
  );
  if (!ok)
    throw new ProtocolError(
      "ENVELOPE_BAD_SIGNATURE",
      `envelope claiming to be from ${sender} has a bad signature`,
      sender,
    );
  const header = EnvelopeHeaderSchema.safeParse(json);
  if (!header.success)
    throw new ProtocolError("ENVELOPE_MALFORMED", `envelope from ${sender} has a malformed header`, sender);
  const h = header.data;
  const types =
    expected.type === undefined ? undefined : Array.isArray(expected.type) ? expected.type : [expected.type];
  const wrong =
    (types && !types.includes(h.type) && `type ${h.type}`) ||
    (expected.scope !== undefined && h.scope !== expected.scope && `scope ${h.scope}`) ||
    (expected.recipient !== undefined &&
      h.recipient !== expected.recipient &&
      h.recipient !== "*" &&
      `recipient ${h.recipient}`) ||
    (expected.caKeyId !== undefined && h.caKeyId !== expected.caKeyId && `CA key id ${h.caKeyId}`);
  if (wrong)
    throw new ProtocolError(
      "ENVELOPE_WRONG_CONTEXT",
      `envelope from ${sender} has unexpected ${wrong}`,
      sender,
    );
  return h;
}

/** Receivers remember message ids they have accepted, per scope. */
export class ReplayGuard {
  readonly #seen = new Set<string>();
  accept(h: EnvelopeHeader): void {
    if (this.#seen.has(h.id))
      throw new ProtocolError(
        "ENVELOPE_REPLAYED",
        `message ${h.id} from ${h.sender} was already received`,
        h.sender,
      );
    this.#seen.add(h.id);
  }
}

export function rosterKeys(custodians: readonly { name: string; signingKey: string }[]): Map<string, string> {
  return new Map(custodians.map((c) => [c.name, c.signingKey]));
}
