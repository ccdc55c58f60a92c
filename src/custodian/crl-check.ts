// What a custodian checks before it signs a CRL (docs/architecture.md §3.9): the number goes up, no serial
// revoked before disappears — neither from the last CRL this custodian signed nor from the CRL published now
// (threshold-signed, so verified against the CA key) — and the dates are within policy.
import type { LoadedConfig } from "../config/load.ts";
import { CrlParamsSchema } from "../protocol/crl-params.ts";
import { HttpError, type HttpClient } from "../protocol/http-client.ts";
import { fromPem } from "../x509/der.ts";
import type { SigningTask } from "../protocol/signing-messages.ts";
import { buildCrlTbs, readCrl, verifyCrlSignature, type RevocationReason } from "../x509/crl.ts";
import type { Journal } from "./journal.ts";
import { refuse, type TbsDeriver } from "./signer.ts";
import { sha256Hex } from "./leaf-check.ts";
import { CLOCK_SKEW_MS } from "./root-check.ts";

export interface PublishedCrl {
  number: bigint;
  serials: string[];
}

/**
 * Fetches the coordinator's current CRL and accepts it only if the CA key signed it. Through the
 * custodian's own HTTP client, so over the same verified TLS as everything else (docs/tls.md).
 */
export async function fetchPublishedCrl(
  http: HttpClient,
  caPublicKey: Uint8Array,
): Promise<PublishedCrl | undefined> {
  let pem: string;
  try {
    pem = await http.text("GET", "/crl.pem", { accept: "application/x-pem-file, application/problem+json" });
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return undefined;
    refuse(`cannot read the published CRL (${(e as Error).message})`);
  }
  let der: Uint8Array;
  try {
    der = fromPem(pem, ["X509 CRL"]);
  } catch {
    refuse("the published CRL is not a PEM CRL");
  }
  if (!verifyCrlSignature(der, caPublicKey)) refuse("the published CRL is not signed by the CA key");
  const crl = readCrl(der);
  return { number: crl.crlNumber, serials: crl.entries.map((e) => e.serial) };
}

export function crlTbsDeriver(
  config: LoadedConfig,
  caCertDer: Uint8Array,
  journal: Journal,
  published: () => Promise<PublishedCrl | undefined>,
  now = () => Date.now(),
): TbsDeriver {
  return async (job: SigningTask) => {
    const parsed = CrlParamsSchema.safeParse(job.params);
    if (!parsed.success) refuse("CRL job parameters are malformed");
    const p = parsed.data;
    const number = BigInt(p.crlNumber);
    const thisUpdate = new Date(p.thisUpdate);
    const nextUpdate = new Date(p.nextUpdate);
    if (Math.abs(thisUpdate.getTime() - now()) > CLOCK_SKEW_MS)
      refuse(`CRL thisUpdate ${p.thisUpdate} is not within 5 minutes of this custodian's clock`);
    const hours = (nextUpdate.getTime() - thisUpdate.getTime()) / 3_600_000;
    if (!(hours > 0) || hours > config.config.ca.crlValidityHours)
      refuse(`CRL validity of ${hours} h is outside 0-${config.config.ca.crlValidityHours} h`);
    const tbs = buildCrlTbs({
      caCertDer,
      crlNumber: number,
      thisUpdate,
      nextUpdate,
      entries: p.entries.map((e) => ({
        serial: e.serial,
        revokedAt: new Date(e.revokedAt),
        reason: e.reason as RevocationReason,
      })),
    });
    const hash = sha256Hex(tbs);
    const listed = new Set(p.entries.map((e) => e.serial.replace(/^(00)+/, "")));
    const own = journal.lastCrl();
    // A re-formed attempt of the job this custodian last signed carries the same bytes: not a rollback.
    const ownFloor = own && !(own.jobId === job.id && own.tbsSha256 === hash) ? own : undefined;
    for (const floor of [ownFloor, await published()]) {
      if (!floor) continue;
      if (number <= floor.number) refuse(`CRL number ${number} does not increase on ${floor.number}`);
      const dropped = floor.serials.find((s) => !listed.has(s.replace(/^(00)+/, "")));
      if (dropped) refuse(`the new CRL drops revoked serial ${dropped}`);
    }
    const conflict = journal.crlConflict(number, hash, job.id);
    if (conflict) refuse(conflict);
    return tbs;
  };
}
