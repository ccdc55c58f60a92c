// A custodian's own check of a renewal (docs/revocation.md, "Renewal"), for the agent policy
// `renewals: approveIfApprovedOriginal`. The coordinator's word that a request renews a certificate
// counts for nothing: the custodian checks the proof itself — the original certificate verifies
// against its pinned CA certificate, this custodian approved exactly that certificate's TBS (its
// own journal), the holder signed this challenge and this CSR with the original's key, the names,
// the extensions and the lifetime are unchanged, and the original is neither expired nor in the
// last CRL this custodian signed. A coordinator alone cannot make one up without the old key.
import { X509Certificate } from "node:crypto";
import { certificateFacts, namesDiffer, renewalMessage, verifyRenewal } from "../protocol/renewal.ts";
import type { ReviewItem } from "../protocol/signing-messages.ts";
import { splitCertificate } from "../x509/assemble.ts";
import { parseCsr } from "../x509/csr.ts";
import { bytesEqual } from "../x509/der.ts";
import { EKU_OIDS, OID } from "../x509/oids.ts";
import { displaySerial } from "../x509/serial.ts";
import { readTbs } from "../x509/tbs-read.ts";
import type { Journal } from "./journal.ts";

export type RenewalVerdict = { ok: true; serial: string } | { ok: false; reason: string };

/** Extensions that must not change in a renewal: all but the key identifier, which follows the key. */
function stableExtensions(tbs: Uint8Array): { oid: string; der: Uint8Array }[] {
  return readTbs(tbs)
    .extensions.filter((e) => e.oid !== OID.subjectKeyIdentifier)
    .map((e) => ({ oid: e.oid, der: e.value }));
}

/** Whether `item` is a renewal this custodian may approve under approveIfApprovedOriginal. */
export function checkRenewal(
  item: ReviewItem,
  caCert: Uint8Array,
  journal: Journal,
  now = Date.now(),
): RenewalVerdict {
  const r = item.renewal;
  if (!r) return { ok: false, reason: "not a renewal" };
  try {
    const originalDer = new Uint8Array(Buffer.from(r.proof.certificate, "base64"));
    const original = new X509Certificate(originalDer);
    if (!original.verify(new X509Certificate(caCert).publicKey))
      return { ok: false, reason: "the renewed certificate is not signed by this CA" };
    const facts = certificateFacts(originalDer);
    const shown = displaySerial(facts.serial);
    // An OCSP responder certificate is never renewed by its holder (docs/ocsp.md): a stolen
    // responder key must not keep itself alive (RFC 6960 §4.2.2.2).
    if ((original.keyUsage ?? []).includes(EKU_OIDS.ocspSigning))
      return { ok: false, reason: `certificate ${shown} can sign OCSP answers and is never renewed` };
    if (facts.serial !== r.of)
      return { ok: false, reason: `the proof is for ${shown}, not ${displaySerial(r.of)}` };
    const approvedByMe = journal
      .entries()
      .some((e) => e.kind === "approval" && e.decision === "approve" && e.tbsSha256 === facts.tbsSha256);
    if (!approvedByMe) return { ok: false, reason: `I did not approve certificate ${shown}` };
    if (Date.parse(original.validTo) <= now) return { ok: false, reason: `certificate ${shown} has expired` };
    const revoked = journal.lastCrl()?.serials.some((x) => x.replace(/^(00)+/, "") === shown);
    if (revoked) return { ok: false, reason: `certificate ${shown} is in the last CRL I signed` };
    const csr = parseCsr(new Uint8Array(Buffer.from(item.csr, "base64")));
    if (
      !verifyRenewal(
        facts.spkiDer,
        renewalMessage(facts.serial, r.proof.challenge, csr.der),
        r.proof.signature,
      )
    )
      return { ok: false, reason: `the renewal is not signed with the key of certificate ${shown}` };
    const differ = namesDiffer(facts, csr);
    if (differ) return { ok: false, reason: `a renewal keeps the names, but ${differ}` };
    const newTbs = new Uint8Array(Buffer.from(item.tbs, "hex"));
    const before = stableExtensions(splitCertificate(originalDer).tbs);
    const after = stableExtensions(newTbs);
    if (
      before.length !== after.length ||
      before.some((e, i) => e.oid !== after[i]!.oid || !bytesEqual(e.der, after[i]!.der))
    )
      return {
        ok: false,
        reason: `the extensions differ from certificate ${shown} (another profile or ca-config)`,
      };
    const lifetime = (t: { notBefore: { date: Date }; notAfter: { date: Date } }) =>
      t.notAfter.date.getTime() - t.notBefore.date.getTime();
    if (lifetime(readTbs(newTbs)) > lifetime(readTbs(splitCertificate(originalDer).tbs)))
      return { ok: false, reason: `the renewal is valid for longer than certificate ${shown}` };
    return { ok: true, serial: shown };
  } catch (e) {
    return { ok: false, reason: `cannot check the renewal: ${(e as Error).message}` };
  }
}
