// tls-alpn-01 (RFC 8737 §3): a TLS handshake with the identifier's address on the configured port
// (443 in production), offering only the "acme-tls/1" ALPN protocol, with the name in SNI. The
// server must negotiate acme-tls/1 and present a certificate (self-signed by design, so it is not
// verified) with exactly one subjectAltName, the identifier, and a critical id-pe-acmeIdentifier
// extension holding SHA-256 of the key authorization. Nothing is sent after the handshake; the
// connection is closed once the certificate is read (§3: "the server ... closes the connection").
//
// IP identifiers (RFC 8738 §6): SNI carries the address's reverse-DNS name (in-addr.arpa or
// ip6.arpa), and the one subjectAltName is an iPAddress equal to the identifier.
import { createHash } from "node:crypto";
import { connect, type TLSSocket } from "node:tls";
import { splitCertificate } from "../../x509/assemble.ts";
import { readTbs } from "../../x509/tbs-read.ts";
import { OID } from "../../x509/oids.ts";
import { decodeGeneralNames } from "../../x509/sans.ts";
import { ipToBytes } from "../../x509/ip.ts";
import type { AcmeValidationOptions, ChallengeToValidate } from "../context.ts";
import type { Identifier } from "../protocol.ts";
import {
  beforeDeadline,
  Deadline,
  hostPort,
  overAddresses,
  quoted,
  validationAddresses,
  ValidationFailure,
} from "./resolve.ts";

/** The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2). */
export const ACME_TLS_ALPN_PROTOCOL = "acme-tls/1";
/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
export const ID_PE_ACME_IDENTIFIER = "1.3.6.1.5.5.7.1.31";

/** The extnValue tls-alpn-01 expects: an OCTET STRING of SHA-256(key authorization) (RFC 8737 §3). */
export function acmeIdentifierExtnValue(keyAuthorization: string): Buffer {
  const digest = createHash("sha256").update(keyAuthorization, "utf8").digest();
  return Buffer.concat([Buffer.from([0x04, digest.length]), digest]);
}

/** The reverse-DNS name of an IP address (RFC 8738 §6, RFC 1035 §3.5, RFC 3596 §2.5). */
export function reverseDnsName(ip: string): string {
  const bytes = ipToBytes(ip);
  if (!bytes) throw new Error(`${ip} is not an IP address`);
  if (bytes.length === 4) return `${Array.from(bytes).reverse().join(".")}.in-addr.arpa`;
  const nibbles = Array.from(bytes).flatMap((b) => [(b >> 4).toString(16), (b & 0x0f).toString(16)]);
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

/** What the handshake brought back: the negotiated protocol and the server's certificate (DER). */
interface Handshake {
  alpn: string | false;
  certificate: Buffer | undefined;
}

function handshake(
  address: string,
  port: number,
  servername: string,
  target: string,
  deadline: Deadline,
): Promise<Handshake> {
  return new Promise<Handshake>((resolve, reject) => {
    let tcpConnected = false;
    let settled = false;
    const socket: TLSSocket = connect({
      host: address,
      port,
      servername,
      ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL],
      // The validation certificate is self-signed by design (RFC 8737 §3); it is checked below.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    });
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      deadline.signal.removeEventListener("abort", onAbort);
      socket.destroy();
      f();
    };
    const onAbort = (): void =>
      finish(() =>
        reject(new ValidationFailure("connection", `${target}: no answer within ${deadline.ms} ms`)),
      );
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => (tcpConnected = true));
    socket.once("secureConnect", () => {
      const certificate = socket.getPeerX509Certificate()?.raw;
      const alpn = socket.alpnProtocol;
      finish(() => resolve({ alpn: alpn ?? false, certificate }));
    });
    socket.on("error", (e: Error & { code?: string }) =>
      finish(() => {
        const why =
          e.code === "ECONNREFUSED"
            ? "connection refused"
            : e.code === "ECONNRESET"
              ? "connection reset"
              : e.message;
        // Once TCP is up, what fails is the TLS handshake (an alert, a reset, no shared cipher).
        reject(
          tcpConnected
            ? new ValidationFailure("tls", `${target}: the TLS handshake failed: ${why}`)
            : new ValidationFailure("connection", `${target}: ${why}`),
        );
      }),
    );
    socket.once("close", () =>
      finish(() =>
        reject(
          new ValidationFailure(
            tcpConnected ? "tls" : "connection",
            `${target}: the connection closed during the TLS handshake`,
          ),
        ),
      ),
    );
    if (deadline.expired) onAbort();
  });
}

/** Checks the validation certificate (RFC 8737 §3, RFC 8738 §6); throws `incorrectResponse`. */
export function checkValidationCertificate(
  der: Uint8Array,
  identifier: Identifier,
  keyAuthorization: string,
  target: string,
): void {
  const bad = (why: string): ValidationFailure =>
    new ValidationFailure("incorrectResponse", `${target} presented a certificate ${why}`);
  let extensions;
  try {
    extensions = readTbs(splitCertificate(der).tbs).extensions;
  } catch (e) {
    throw bad(`that could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  const sanExtensions = extensions.filter((e) => e.oid === OID.subjectAltName);
  if (sanExtensions.length !== 1)
    throw bad(`with ${sanExtensions.length} subjectAltName extensions, expected one`);
  let sans;
  try {
    sans = decodeGeneralNames(sanExtensions[0]!.value, "CERT_MALFORMED");
  } catch (e) {
    throw bad(
      `whose subjectAltName is not one ${identifier.type === "ip" ? "iPAddress" : "dNSName"}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const wanted = identifier.type === "ip" ? `iPAddress ${identifier.value}` : `dNSName ${identifier.value}`;
  if (sans.length !== 1)
    throw bad(
      `with ${sans.length} subjectAltNames (${quoted(sans.map((s) => `${s.type}:${s.value}`).join(", "))}), expected only ${wanted}`,
    );
  const san = sans[0]!;
  const matches =
    identifier.type === "ip"
      ? san.type === "ip" &&
        Buffer.from(ipToBytes(san.value) ?? []).equals(Buffer.from(ipToBytes(identifier.value) ?? [0]))
      : san.type === "dns" && san.value.toLowerCase() === identifier.value.replace(/\.$/, "").toLowerCase();
  if (!matches) throw bad(`for ${san.type}:${quoted(san.value)}, expected ${wanted}`);
  const acme = extensions.filter((e) => e.oid === ID_PE_ACME_IDENTIFIER);
  if (acme.length !== 1)
    throw bad(
      `with ${acme.length} acmeIdentifier extensions (${ID_PE_ACME_IDENTIFIER}), expected one (RFC 8737 §3)`,
    );
  const ext = acme[0]!;
  if (!ext.critical) throw bad(`whose acmeIdentifier extension is not marked critical (RFC 8737 §3)`);
  const expected = acmeIdentifierExtnValue(keyAuthorization);
  if (!Buffer.from(ext.value).equals(expected))
    throw bad(
      `whose acmeIdentifier extension holds ${quoted(Buffer.from(ext.value).toString("hex"), 80)}, expected the ` +
        `OCTET STRING of SHA-256 of the key authorization, ${quoted(expected.toString("hex"), 80)}`,
    );
}

export async function validateTlsAlpn01(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
  deadline: Deadline,
): Promise<void> {
  const servername =
    c.identifier.type === "ip" ? reverseDnsName(c.identifier.value) : c.identifier.value.replace(/\.$/, "");
  const addresses = await validationAddresses(c.identifier, o, deadline);
  await overAddresses(addresses, deadline, async (address) => {
    const target = `${hostPort(address, o.tlsPort)} (TLS, SNI ${servername})`;
    const got = await beforeDeadline(
      handshake(address, o.tlsPort, servername, target, deadline),
      deadline,
      () => new ValidationFailure("connection", `${target}: no answer within ${deadline.ms} ms`),
    );
    if (got.alpn !== ACME_TLS_ALPN_PROTOCOL)
      throw new ValidationFailure(
        "tls",
        `${target} did not negotiate the ${ACME_TLS_ALPN_PROTOCOL} ALPN protocol` +
          (got.alpn ? ` (it chose ${quoted(got.alpn)})` : "") +
          ": a tls-alpn-01 responder must offer it and present the validation certificate there (RFC 8737 §3)",
      );
    if (!got.certificate) throw new ValidationFailure("tls", `${target} presented no certificate`);
    checkValidationCertificate(got.certificate, c.identifier, c.keyAuthorization, target);
  });
}
