// revokeCert (RFC 8555 §7.6): by the account whose order got the certificate (`kid`), or by anyone
// holding the certificate's private key (`jwk` of that key). The revocation is tca's own
// (RevocationService): recorded, then a new CRL that the custodians check and sign like every other
// (docs/revocation.md). Answers 200 with an empty body.
import { createPublicKey, type JsonWebKey } from "node:crypto";
import type { Router } from "express";
import { calculateJwkThumbprint, type JWK } from "jose";
import { CoordinatorError } from "../coordinator/errors.ts";
import type { RevocationActor } from "../coordinator/revocation.ts";
import { OFFERED_REVOCATION_REASONS } from "../protocol/crl-params.ts";
import { splitCertificate } from "../x509/assemble.ts";
import { REASON_CODES, type RevocationReason } from "../x509/crl-read.ts";
import { toHex } from "../x509/der.ts";
import { displaySerial } from "../x509/serial.ts";
import { readTbs } from "../x509/tbs-read.ts";
import type { AcmeContext } from "./context.ts";
import { decodeBase64urlStrict } from "./cert-id.ts";
import { ROUTES } from "./paths.ts";
import { acmePost } from "./post.ts";
import { AcmeProblem } from "./problems.ts";
import { RevokeCertPayloadSchema } from "./protocol.ts";

type OfferedReason = (typeof OFFERED_REVOCATION_REASONS)[number];

/**
 * RFC 5280 §5.3.1 CRLReason codes → tca's reasons; absent → unspecified. certificateHold (6) is
 * refused as tca refuses it everywhere (a hold could never be released, docs/revocation.md), as are
 * removeFromCRL (8, only meaningful in delta CRLs), the unused 7 and anything unknown.
 */
export function revocationReasonOf(code: number | undefined): OfferedReason {
  if (code === undefined) return "unspecified";
  const found = (Object.entries(REASON_CODES) as [RevocationReason, number][]).find(([, c]) => c === code);
  const reason = found?.[0];
  if (!reason || !(OFFERED_REVOCATION_REASONS as readonly string[]).includes(reason))
    throw new AcmeProblem(
      "badRevocationReason",
      `revocation reason ${code} is not accepted; this CA accepts: ${OFFERED_REVOCATION_REASONS.map((r) => `${REASON_CODES[r]} (${r})`).join(", ")}`,
    );
  return reason as OfferedReason;
}

/** A JWK's key as SubjectPublicKeyInfo DER in node's encoding (undefined if node cannot read it). */
function spkiOfJwk(jwk: JWK): Buffer | undefined {
  try {
    return createPublicKey({ key: jwk as JsonWebKey, format: "jwk" }).export({ type: "spki", format: "der" });
  } catch {
    return undefined;
  }
}

/** The same, for a certificate's SPKI: re-encoded so a compressed EC point compares equal too. */
function spkiOfDer(spki: Uint8Array): Buffer | undefined {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }).export({
      type: "spki",
      format: "der",
    });
  } catch {
    return undefined;
  }
}

export function registerRevocation(r: Router, ctx: AcmeContext): void {
  r.post(
    ROUTES.revokeCert,
    acmePost(ctx, { key: "either" }, async (_req, res, post) => {
      const payload = RevokeCertPayloadSchema.parse(post.payload);
      const der = decodeBase64urlStrict(payload.certificate);
      if (!der)
        throw new AcmeProblem(
          "malformed",
          "certificate must be the DER certificate, base64url without padding",
        );
      let serial: string;
      let spki: Uint8Array;
      try {
        const tbs = readTbs(splitCertificate(der).tbs);
        serial = toHex(tbs.serial);
        spki = tbs.spkiDer;
      } catch {
        throw new AcmeProblem("malformed", "certificate is not a DER X.509 certificate");
      }
      // The reason is checked before anything is looked up: a bad one is refused the same for all.
      const reason = revocationReasonOf(payload.reason);
      const request = await ctx.services.store.getRequestBySerial(serial);
      // One this CA issued: same serial and the very same bytes (a look-alike with our serial is not ours).
      if (!request?.certificate || !Buffer.from(request.certificate).equals(Buffer.from(der)))
        throw new AcmeProblem("malformed", "this certificate was not issued by this CA", { status: 404 });

      let actor: RevocationActor;
      if (post.account) {
        // §7.6 also lets an account revoke a certificate for whose every name it holds valid
        // authorizations. tca does not: the revocation service lets an ACME account revoke only what
        // its own orders got (src/coordinator/revocation.ts), and names authorized under one
        // requester grant say nothing about a certificate issued under another. Such a client can
        // revoke with the certificate's key instead.
        const account = post.account;
        if (request.origin?.kind !== "acme" || request.origin.account !== account.id)
          throw new AcmeProblem(
            "unauthorized",
            "this account's orders did not get this certificate; sign the revocation with the certificate's own key (jwk) instead",
          );
        actor = { kind: "acme", name: account.id, requester: account.requester };
      } else {
        const mine = post.jwk ? spkiOfJwk(post.jwk) : undefined;
        const its = spkiOfDer(spki);
        if (!mine || !its || !mine.equals(its))
          throw new AcmeProblem(
            "unauthorized",
            "the jwk that signed this request is not the certificate's key (RFC 8555 §7.6)",
          );
        // Proof of the certificate's private key authorizes revoking that certificate, whoever asked
        // for it (§7.6); recorded as holder:<the key's JWK thumbprint>.
        actor = { kind: "holder", name: await calculateJwkThumbprint(post.jwk!, "sha256"), serial };
      }

      const existing = await ctx.services.store.getCertificate(serial);
      if (existing?.revocation)
        throw new AcmeProblem(
          "alreadyRevoked",
          `certificate ${displaySerial(serial)} was already revoked at ${existing.revocation.revokedAt} (${existing.revocation.reason})`,
        );
      try {
        const done = await ctx.services.revocations.revoke(serial, reason, actor);
        ctx.log.info(
          {
            serial: done.serial,
            reason,
            by: post.account ? `account ${post.account.id}` : "certificate key",
          },
          "ACME: certificate revoked",
        );
      } catch (e) {
        if (e instanceof CoordinatorError && e.code === "CONFLICT")
          throw new AcmeProblem("alreadyRevoked", `certificate ${displaySerial(serial)} is already revoked`);
        if (e instanceof CoordinatorError && e.code === "NOT_FOUND")
          throw new AcmeProblem("unauthorized", e.message);
        throw e;
      }
      res.status(200).end();
    }),
  );
}
