// What a custodian checks before it signs the self-signed root (docs/architecture.md §5): it re-derives the
// TBS from its own ca-config and the group key it computed in the DKG, bounding the coordinator's
// choices of serial and validity (docs/architecture.md §3.2), and lints the result.
import type { LoadedConfig } from "../config/load.ts";
import { RootParamsSchema, type SigningTask } from "../protocol/signing-messages.ts";
import { hexToBytes } from "../threshold/encoding.ts";
import { buildRootTbs } from "../x509/root.ts";
import { checkSerial } from "../x509/serial.ts";
import { lintTbs } from "../x509/lint.ts";
import { nameToDer } from "../x509/names.ts";
import { refuse, type TbsDeriver } from "./signer.ts";

/** How far the coordinator's notBefore may be from this custodian's clock. */
export const CLOCK_SKEW_MS = 5 * 60_000;

export function rootTbsDeriver(
  config: LoadedConfig,
  ceremonyId: string,
  caPublicKey: Uint8Array,
  now = () => Date.now(),
): TbsDeriver {
  return (job: SigningTask) => {
    const p = RootParamsSchema.safeParse(job.params);
    if (!p.success) refuse("root job parameters are malformed");
    const { serial, notBefore, notAfter } = p.data;
    if (p.data.ceremonyId !== ceremonyId || job.subjectRef !== ceremonyId)
      refuse("root job belongs to another ceremony");
    const serialBytes = hexToBytes(serial);
    checkSerial(serialBytes);
    const nb = new Date(notBefore);
    const na = new Date(notAfter);
    if (Math.abs(nb.getTime() - now()) > CLOCK_SKEW_MS)
      refuse(`root notBefore ${notBefore} is not within 5 minutes of this custodian's clock`);
    const days = config.config.ca.rootValidityDays;
    if (na.getTime() - nb.getTime() !== days * 86_400_000)
      refuse(`root validity must be exactly ${days} days as ca-config says`);
    const tbs = buildRootTbs({
      subject: config.config.ca.subject,
      caPublicKey,
      serial: serialBytes,
      notBefore: nb,
      notAfter: na,
    });
    lintTbs(tbs, { caSubjectDer: nameToDer(config.config.ca.subject) });
    return tbs;
  };
}
