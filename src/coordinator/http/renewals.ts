// Renewal authenticated by the current certificate, not a token (docs/revocation.md, "Renewal"):
//   POST /api/v1/certificates/{serial}/renewal-challenge → {challenge, expiresAt}: one-time, short-lived
//   POST /api/v1/certificates/{serial}/renew {csr, challenge, signature} → the new request
//   GET  /api/v1/renewals/{id}  (Authorization: Bearer <the challenge>) → its progress, then its chain
// The new request belongs to the original requester and profile, keeps the names (the key may
// change), carries renewalOf and the proof, and goes through the custodians' approval like any.
import { createHash, randomBytes, timingSafeEqual, X509Certificate } from "node:crypto";
import express, { type Router } from "express";
import type { CoordinatorServices } from "../services.ts";
import { CoordinatorError } from "../errors.ts";
import { clock } from "../clock.ts";
import { normaliseSerial } from "../revocation.ts";
import { bearerToken } from "./auth.ts";
import { describeIssues, parseQuery, ViewQuery } from "./query.ts";
import type { RequestRecord } from "../store/types.ts";
import {
  certificateFacts,
  namesDiffer,
  RENEWAL_CHALLENGE_TTL_MS,
  RenewBodySchema,
  renewalMessage,
  verifyRenewal,
  type RenewalChallenge,
  type RenewalView,
  type Renewed,
} from "../../protocol/renewal.ts";
import { parseCsr } from "../../x509/csr.ts";
import { X509Error } from "../../x509/errors.ts";
import { displaySerial, storedSerial } from "../../x509/serial.ts";
import { MAX_CSR_BYTES } from "../requests/index.ts";
import { signsOcsp } from "../../config/schema.ts";
import { EKU_OIDS } from "../../x509/oids.ts";

const sha256 = (s: string): string => createHash("sha256").update(s, "utf8").digest("hex");
/** Unused, unexpired challenges one certificate may have at once (they are handed out without credentials). */
export const MAX_LIVE_RENEWAL_CHALLENGES = 5;
/** A certificate has at most one renewal in these states (docs/revocation.md, "One live renewal"). */
const LIVE_RENEWAL = new Set(["pending", "signing", "issued"]);
const RenewalQuery = ViewQuery;

/**
 * The serials (display form) of the issued renewals of a certificate, for the revoke answer: revoking
 * a certificate does not revoke its renewals; after a key compromise revoke them too
 * (docs/revocation.md).
 */
export async function issuedRenewalsOf(s: CoordinatorServices, serial: string): Promise<string[]> {
  const stored = storedSerial(serial) ?? serial;
  return (await s.store.listRenewalsOf(stored))
    .filter((x) => x.status === "issued")
    .map((x) => displaySerial(x.serial));
}

/** Adds the renewal routes to the coordinator's router (registering touches no service). */
export function registerRenewals(r: Router, s: CoordinatorServices): void {
  const json = express.json({ limit: "96kb" });
  // Renewals of one serial run one after the other in this process, so the "one live renewal" check
  // and the submit that follows it are not interleaved with another renewal of the same certificate.
  const inFlight = new Map<string, Promise<unknown>>();
  const oneAtATime = <T>(serial: string, fn: () => Promise<T>): Promise<T> => {
    const prev = inFlight.get(serial) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    inFlight.set(serial, tail);
    void tail.then(() => {
      if (inFlight.get(serial) === tail) inFlight.delete(serial);
    });
    return run;
  };

  /** Refuses (409) a renewal of a certificate that already has a pending, signing or issued one. */
  const noLiveRenewal = async (serial: string): Promise<void> => {
    const live = (await s.store.listRenewalsOf(serial)).find((x) => LIVE_RENEWAL.has(x.status));
    if (!live) return;
    const shown = displaySerial(serial);
    throw new CoordinatorError(
      "CONFLICT",
      live.status === "issued"
        ? `certificate ${shown} was already renewed: request ${live.requestId} issued serial ${displaySerial(live.serial)}; renew that certificate instead`
        : `certificate ${shown} already has a renewal in progress: request ${live.requestId} (new serial ${displaySerial(live.serial)}) is ${live.status}; wait for it (a custodian may reject it) instead of renewing again`,
      {
        reason: "RENEWAL_EXISTS",
        renewal: live.requestId,
        status: live.status,
        ...(live.status === "issued" ? { serial: displaySerial(live.serial) } : {}),
      },
    );
  };

  /**
   * The issued certificate with this serial, refused when it can sign OCSP answers (409), revoked
   * (409) or expired (403).
   */
  const renewable = async (serialInput: string): Promise<RequestRecord & { certificate: Uint8Array }> => {
    const serial = normaliseSerial(serialInput);
    const shown = displaySerial(serial);
    const orig = await s.store.getRequestBySerial(serial);
    if (!orig || orig.status !== "issued" || !orig.certificate)
      throw new CoordinatorError("NOT_FOUND", `no certificate with serial ${shown} was issued by this CA`);
    // A delegated OCSP responder certificate (docs/ocsp.md) is never renewed by its holder: whoever
    // stole its key could otherwise keep a responder for this CA alive for ever, each renewal
    // proved by the key it stole. The coordinator asks for a new one with a new key instead. Judged
    // by the profile as ca-config has it now and by the certificate itself (RFC 6960 §4.2.2.2).
    const profile = s.config.config.profiles[orig.profile];
    const eku = new X509Certificate(Buffer.from(orig.certificate)).keyUsage ?? [];
    if ((profile && signsOcsp(profile)) || eku.includes(EKU_OIDS.ocspSigning))
      throw new CoordinatorError(
        "CONFLICT",
        `certificate ${shown} (profile ${orig.profile}) can sign OCSP answers for this CA and is never renewed by its holder: the coordinator asks the custodians for a new responder certificate with a new key (docs/ocsp.md)`,
        { reason: "NOT_RENEWABLE" },
      );
    const revoked = (await s.store.getCertificate(serial))?.revocation;
    if (revoked)
      throw new CoordinatorError(
        "CONFLICT",
        `certificate ${shown} was revoked at ${revoked.revokedAt} (${revoked.reason}); a revoked certificate cannot be renewed: request a new one`,
        { reason: "REVOKED" },
      );
    if (Date.parse(orig.notAfter) <= clock.now())
      throw new CoordinatorError(
        "FORBIDDEN",
        `certificate ${shown} expired at ${orig.notAfter}; an expired certificate cannot be renewed: request a new one`,
        { reason: "EXPIRED" },
      );
    return orig as RequestRecord & { certificate: Uint8Array };
  };

  r.post("/api/v1/certificates/:serial/renewal-challenge", async (req, res) => {
    const orig = await renewable(String(req.params.serial));
    const challenge = randomBytes(32).toString("base64url");
    const now = clock.now();
    const nowIso = new Date(now).toISOString();
    const expiresAt = new Date(now + RENEWAL_CHALLENGE_TTL_MS).toISOString();
    // Anyone may ask (no credential), so expired rows are purged, used or not, and one certificate
    // has at most MAX_LIVE_RENEWAL_CHALLENGES live ones; counted and inserted under the write lock.
    const full = await s.store.transaction(async (tx) => {
      await tx.purgeRenewalChallenges(nowIso);
      const live = await tx.liveRenewalChallenges(orig.serial, nowIso);
      if (live.count >= MAX_LIVE_RENEWAL_CHALLENGES)
        return Math.max(1, Math.ceil((Date.parse(live.firstExpiry ?? expiresAt) - now) / 1000));
      await tx.insertRenewalChallenge({ challengeSha256: sha256(challenge), serial: orig.serial, expiresAt });
      return 0;
    });
    if (full > 0) {
      res.set("Retry-After", String(full));
      throw new CoordinatorError(
        "TOO_MANY_REQUESTS",
        `certificate ${displaySerial(orig.serial)} already has ${MAX_LIVE_RENEWAL_CHALLENGES} unused renewal challenges: use one, or retry in ${full} s`,
        { retryAfter: full },
      );
    }
    const body: RenewalChallenge = { challenge, expiresAt };
    res.status(201).json(body);
  });

  r.post("/api/v1/certificates/:serial/renew", json, async (req, res) => {
    if (req.body === undefined)
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        'send JSON {"csr", "challenge", "signature"} with Content-Type: application/json',
      );
    const b = RenewBodySchema.safeParse(req.body);
    if (!b.success)
      throw new CoordinatorError("BAD_REQUEST", `invalid renewal: ${describeIssues(b.error, "field")}`);
    const orig = await renewable(String(req.params.serial));
    const shown = displaySerial(orig.serial);
    const challengeSha256 = sha256(b.data.challenge);
    const badChallenge = () =>
      new CoordinatorError(
        "FORBIDDEN",
        `the challenge is unknown, expired, already used or for another certificate: ask for a new one (POST /api/v1/certificates/${shown}/renewal-challenge)`,
        { reason: "CHALLENGE" },
      );
    let csr: ReturnType<typeof parseCsr>;
    try {
      csr = parseCsr(b.data.csr, { maxBytes: MAX_CSR_BYTES });
    } catch (e) {
      if (e instanceof X509Error) throw new CoordinatorError("BAD_REQUEST", e.message, { reason: e.code });
      throw e;
    }
    const facts = certificateFacts(orig.certificate);
    if (
      !verifyRenewal(facts.spkiDer, renewalMessage(orig.serial, b.data.challenge, csr.der), b.data.signature)
    )
      throw new CoordinatorError(
        "FORBIDDEN",
        `the signature does not verify with the key of certificate ${shown}: sign the renewal with that certificate's private key`,
        { reason: "SIGNATURE" },
      );
    // Only now, with the holder's signature checked, is the challenge used up, by one conditional
    // update before the submit: of two attempts with one challenge one changes the row, so a
    // renewal is never replayed; a forged signature cannot burn the holder's challenge.
    const view = await oneAtATime(orig.serial, async () => {
      if (!(await s.store.useRenewalChallenge(challengeSha256, orig.serial, clock.iso())))
        throw badChallenge();
      await noLiveRenewal(orig.serial);
      const differ = namesDiffer(facts, csr);
      if (differ)
        throw new CoordinatorError(
          "UNPROCESSABLE",
          `a renewal keeps the names of certificate ${shown}, but ${differ}: request a new certificate for other names`,
          { reason: "NAMES" },
        );
      // The original's exact lifetime (whole seconds, as in the certificate), never longer: the
      // custodians refuse a longer renewal. Intake clamps a renewal to the CA certificate's notAfter.
      // Whole seconds plus half a millisecond, so that hours × 3 600 000 lands on the same second
      // whatever the floating-point rounding (a Date drops the fraction).
      const lifetimeMs = Math.floor((Date.parse(orig.notAfter) - Date.parse(orig.notBefore)) / 1000) * 1000;
      return s.requests.submit({
        requester: s.requests.requesterFor(orig.requester),
        profile: orig.profile,
        csr: csr.der,
        validityHours: (lifetimeMs + 0.5) / 3_600_000,
        renewal: {
          renewalOf: orig.serial,
          challengeSha256,
          proof: {
            certificate: Buffer.from(orig.certificate).toString("base64"),
            challenge: b.data.challenge,
            signature: b.data.signature,
          },
          createdAt: clock.iso(),
        },
      });
    });
    const body: Renewed = {
      id: view.id,
      status: view.status,
      serial: displaySerial(view.serial),
      renewalOf: shown,
    };
    res.status(202).location(`/api/v1/renewals/${view.id}`).json(body);
  });

  // The renewer has no token: the challenge it used (known only to it and to those who read the
  // request) is its credential for this one renewal. Anyone else gets the same 404 as a missing id.
  r.get("/api/v1/renewals/:id", async (req, res) => {
    const id = String(req.params.id);
    const token = bearerToken(req);
    if (!token)
      throw new CoordinatorError(
        "UNAUTHORIZED",
        'send the renewal\'s challenge as "Authorization: Bearer <challenge>"',
      );
    const q = parseQuery(
      RenewalQuery,
      req.query,
      "wait must be 0-60 seconds and since a state like pending/1",
    );
    const renewal = /^[0-9a-f-]{36}$/.test(id) ? await s.store.getRenewal(id) : undefined;
    const mine =
      renewal !== undefined &&
      timingSafeEqual(Buffer.from(renewal.challengeSha256, "hex"), Buffer.from(sha256(token), "hex"));
    if (!mine) throw new CoordinatorError("NOT_FOUND", `no renewal ${id} for this challenge`);
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const v = await s.requests.view(id, {
      waitMs: q.wait * 1000,
      ...(q.since !== undefined ? { since: q.since } : {}),
      signal: gone.signal,
    });
    const body: RenewalView = {
      id: v.id,
      status: v.status,
      serial: displaySerial(v.serial),
      renewalOf: displaySerial(renewal.renewalOf),
      notAfter: v.notAfter,
      approvals: v.approvals.filter((a) => a.decision === "approve").length,
      missing: v.missing,
      rejection: v.rejection,
      failure: v.failure,
      chain: v.status === "issued" ? await s.requests.certificateChain(id) : null,
    };
    res.json(body);
  });
}
