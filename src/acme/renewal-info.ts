// ACME Renewal Information (ARI, RFC 9773): GET renewalInfo/<CertID>, unauthenticated, answers when
// the client should renew that certificate (§4.2). A client picks a random time inside the window,
// which spreads renewals out; a window already past tells it to renew now (a revoked certificate).
import type { Router } from "express";
import { clock } from "../coordinator/clock.ts";
import type { AcmeContext } from "./context.ts";
import { issuedCertificateOf } from "./cert-id.ts";
import { sendJson } from "./http.ts";
import { ROUTES } from "./paths.ts";
import type { RenewalInfoObject } from "./protocol.ts";

/** RFC 9773 §4.3: how often a client should ask again; the window rarely moves sooner. */
export const RENEWAL_INFO_RETRY_SECONDS = 6 * 3600;

/**
 * The suggested window of a certificate valid from notBefore to notAfter (lifetime L): from 2/3 of L
 * to 5/6 of L. It begins where Let's Encrypt's clients have long renewed (a third of the lifetime
 * left) and ends with a sixth still left, well before expiry: in a threshold CA issuance can wait
 * hours for a person (docs/acme.md), and a renewal that is refused or waits must still have time
 * before the old certificate expires. Revoked: a window that ended now, so the client renews at
 * once (§4.2).
 */
export function suggestedWindow(
  notBefore: Date,
  notAfter: Date,
  revoked: boolean,
  now = clock.date(),
): RenewalInfoObject["suggestedWindow"] {
  const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();
  if (revoked) return { start: iso(now.getTime() - 3_600_000), end: iso(now.getTime()) };
  const nb = notBefore.getTime();
  const lifetime = notAfter.getTime() - nb;
  return { start: iso(nb + (lifetime * 2) / 3), end: iso(nb + (lifetime * 5) / 6) };
}

export function registerRenewalInfo(r: Router, ctx: AcmeContext): void {
  r.get(ROUTES.renewalInfoOf, (req, res, next) => {
    void (async () => {
      const certId = String(req.params.certId ?? "");
      const { request } = await issuedCertificateOf(ctx, certId, 404);
      const cert = await ctx.services.store.getCertificate(request.serial);
      const body: RenewalInfoObject = {
        suggestedWindow: suggestedWindow(
          new Date(request.notBefore),
          new Date(request.notAfter),
          cert?.revocation != null,
        ),
      };
      sendJson(res, 200, body, { retryAfter: RENEWAL_INFO_RETRY_SECONDS });
    })().catch(next);
  });
}
