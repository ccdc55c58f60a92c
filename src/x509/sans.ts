// Subject alternative names (RFC 5280 §4.2.1.6) read from DER GeneralNames, in their order.
import { TAG } from "./der.ts";
import { children, expectTag, readDer } from "./der-read.ts";
import { bytesToIp } from "./ip.ts";
import { X509Error, type X509ErrorCode } from "./errors.ts";
import type { San } from "./extensions.ts";

export type { San, SanType } from "./extensions.ts";

const KIND_NAMES: Record<number, string> = {
  0xa0: "otherName",
  0x83: "x400Address",
  0xa3: "x400Address",
  0xa4: "directoryName",
  0xa5: "ediPartyName",
  0x88: "registeredID",
};

/**
 * GeneralNames DER -> San[]. Only rfc822Name, dNSName, URI and iPAddress are issued by tca;
 * any other kind throws `unsupportedCode` naming it.
 */
export function decodeGeneralNames(
  der: Uint8Array,
  unsupportedCode: X509ErrorCode = "SAN_TYPE_NOT_ALLOWED",
): San[] {
  // From a CSR, a broken name is a malformed CSR; from a TBS (lint, inspect), the caller's code.
  const malformedCode: X509ErrorCode =
    unsupportedCode === "SAN_TYPE_NOT_ALLOWED" ? "CSR_MALFORMED" : unsupportedCode;
  const out: San[] = [];
  for (const gn of children(expectTag(readDer(der), TAG.SEQUENCE, "GeneralNames"))) {
    const text = () => {
      if (!gn.value.every((b) => b < 0x80))
        throw new X509Error(
          malformedCode,
          "A subject alternative name holds non-ASCII bytes in an IA5String.",
          "subjectAltName",
        );
      return Buffer.from(gn.value).toString("ascii");
    };
    switch (gn.tag) {
      case 0x81:
        out.push({ type: "email", value: text() });
        break;
      case 0x82:
        out.push({ type: "dns", value: text() });
        break;
      case 0x86:
        out.push({ type: "uri", value: text() });
        break;
      case 0x87: {
        const ip = bytesToIp(gn.value);
        if (ip === undefined)
          throw new X509Error(
            malformedCode,
            `An iPAddress subject alternative name has ${gn.value.length} octets; expected 4 or 16.`,
            "subjectAltName",
          );
        out.push({ type: "ip", value: ip });
        break;
      }
      default: {
        const kind = KIND_NAMES[gn.tag] ?? `GeneralName tag 0x${gn.tag.toString(16)}`;
        throw new X509Error(
          unsupportedCode,
          `A ${kind} subject alternative name was requested; tca issues only DNS, IP, email and URI names.`,
          "subjectAltName",
        );
      }
    }
  }
  return out;
}
