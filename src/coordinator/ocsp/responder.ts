// The OCSP responder (RFC 6960, the lightweight profile of RFC 5019, nonces of RFC 8954 as updated
// by RFC 9654;
// docs/ocsp.md). It answers for the certificates of this CA only, from the coordinator's own record
// (issued, revoked, never issued), and signs each answer live with the key of its delegated
// responder certificate (RFC 6960 §4.2.2.2): a short-lived certificate with id-kp-OCSPSigning and
// id-pkix-ocsp-nocheck that the custodians issued like any other (signer-cert.ts). Live signing is
// what lets a response echo a nonce and show a revocation at once; the threshold is not asked per
// response (a FROST round per answer would be slow and could never echo a nonce).
//
// What it answers:
// - malformedRequest (1): not DER, not an OCSPRequest, no or too many single requests, a nonce
//   outside 1..128 octets (RFC 9654 §2.1);
// - tryLater (3): the CA root or the responder certificate does not exist yet, or this CA revoked
//   the responder certificate (a new one is on its way), or the store cannot be read now;
// - internalError (2): anything else that goes wrong here (logged), never an HTTP error: OCSP
//   clients parse only an OCSPResponse;
// - unauthorized (6): OCSP is off here (no responder certificate can be had: the log says why), or
//   no CertID in the request names this CA as issuer (RFC 5019 §2.2.3: not authoritative);
// - successful (0) otherwise, one SingleResponse per request, in order: `good` for a certificate
//   this CA issued and has not revoked (expired ones too: the record is kept, nothing is dropped),
//   `revoked` with the time and reason of the revocation record, `unknown` for a serial it never
//   issued and for a CertID naming another issuer (RFC 6960 §2.2).
import { createHash, createPrivateKey, sign, type KeyObject } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  CertID,
  CertStatus,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  OCSPRequest,
  OCSPResponseStatus,
  ResponderID,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  KeyHash,
} from "@peculiar/asn1-ocsp";
import { Certificate, CRLReason, Extension } from "@peculiar/asn1-x509";
import type { Logger } from "pino";
import { readCaCert } from "../../x509/ca-cert.ts";
import {
  bitString,
  bytesEqual,
  ctx,
  octetString,
  oid,
  seq,
  tlv,
  toArrayBuffer,
  toHex,
  u8,
} from "../../x509/der.ts";
import { readDer } from "../../x509/der-read.ts";
import { REASON_CODES, type RevocationReason } from "../../x509/crl-read.ts";
import { spkiPublicKeyBits } from "../../x509/ski.ts";
import { storedSerial } from "../../x509/serial.ts";
import { OID } from "../../x509/oids.ts";

/** How long a `successful` answer is good for (nextUpdate − thisUpdate), capped by the responder certificate. */
export const OCSP_RESPONSE_VALIDITY_SECONDS = 3_600;
/** Single requests one OCSP request may carry (RFC 5019 §2.1.1 clients send one; a few are fine). */
export const OCSP_MAX_SINGLE_REQUESTS = 16;
/**
 * RFC 9654 §2.1 (updating RFC 8954, which allowed 32): Nonce ::= OCTET STRING (SIZE(1..128)); a
 * responder accepts any length in that range (clients are told to send 32).
 */
export const OCSP_MAX_NONCE_OCTETS = 128;
/** The largest request read (POST body; the decoded GET path likewise). */
export const OCSP_MAX_REQUEST_BYTES = 4_096;

/** The hash algorithms a CertID may use (RFC 6960 §4.1.1 names SHA-1; RFC 5019 §2.1.1 too; SHA-2 as well). */
const CERT_ID_HASHES: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};
/** ecdsa-with-SHA256 without parameters (RFC 5758 §3.2). */
const ECDSA_SHA256 = OID.ecdsaWithSHA256;

/** The delegated responder: its P-256 key and the certificate the CA issued for it. */
export interface OcspSigner {
  key: KeyObject;
  certDer: Uint8Array;
  notAfter: Date;
}

/** What the responder reads: the CA certificate, and one issued certificate's record by serial. */
export interface OcspSource {
  caCertificate(): Promise<Uint8Array | null>;
  /** The certificate this CA issued with this serial (stored form), with its revocation if any. */
  certificate(
    serial: string,
  ): Promise<{ revocation: { revokedAt: string; reason: string } | null } | undefined>;
}

export interface OcspAnswer {
  /** The DER OCSPResponse. */
  der: Uint8Array;
  status: OCSPResponseStatus;
  /** For a successful answer: when it stops being current, and whether it echoes a nonce. */
  thisUpdate?: Date;
  nextUpdate?: Date;
  nonce?: boolean;
}

type State =
  | { kind: "off"; why: string }
  | { kind: "waiting" }
  | { kind: "ready"; signer: OcspSigner & { keyHash: Uint8Array; serial: string } };

/** An OCSPResponse with only a status (RFC 6960 §4.2.1: no responseBytes unless successful). */
export function statusOnly(status: OCSPResponseStatus): Uint8Array {
  return seq(tlv(0x0a, Uint8Array.of(status)));
}

/** A request that cannot be answered as it stands: malformedRequest. */
class Malformed extends Error {}
/** The source (the coordinator's store) cannot be read now: tryLater. */
class Unavailable extends Error {}

export class OcspResponder {
  #state: State;
  readonly #source: OcspSource;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  #onReady: (() => void)[] = [];

  constructor(o: { source: OcspSource; now?: () => number; log?: Logger }) {
    this.#source = o.source;
    this.#now = o.now ?? Date.now;
    this.#log = o.log;
    this.#state = { kind: "off", why: "this coordinator runs no OCSP responder" };
  }

  /** OCSP is off here: every request is answered `unauthorized`; `why` goes to the log once. */
  off(why: string): void {
    this.#state = { kind: "off", why };
    this.#log?.warn({ why }, "OCSP: off; requests are answered unauthorized");
  }
  /** A responder certificate is on its way: `tryLater` until one is installed. */
  waiting(): void {
    if (this.#state.kind !== "ready") this.#state = { kind: "waiting" };
  }
  /** Installs the responder's key and certificate (the first, or a renewal). */
  install(s: { keyPem: string; der: Uint8Array; notAfter: Date }): void {
    const cert = AsnConvert.parse(toArrayBuffer(s.der), Certificate);
    const spki = u8(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo));
    // RFC 6960 §4.2.1 ResponderID byKey: SHA-1 of the responder's public key BIT STRING value.
    const keyHash = new Uint8Array(createHash("sha1").update(spkiPublicKeyBits(spki)).digest());
    const serial = toHex(u8(cert.tbsCertificate.serialNumber));
    this.#state = {
      kind: "ready",
      signer: { key: createPrivateKey(s.keyPem), certDer: s.der, notAfter: s.notAfter, keyHash, serial },
    };
    for (const f of this.#onReady) f();
    this.#onReady = [];
  }
  /** The installed certificate was revoked: `tryLater` until another is installed. */
  withdraw(): void {
    if (this.#state.kind === "ready") this.#state = { kind: "waiting" };
  }
  /** Whether this CA's record has the certificate with this serial (stored form) revoked. */
  async revoked(serial: string): Promise<boolean> {
    return Boolean((await this.#source.certificate(serial))?.revocation);
  }
  get state(): "off" | "waiting" | "ready" {
    return this.#state.kind;
  }
  /** Resolves once a responder certificate is installed. */
  whenReady(): Promise<void> {
    return this.#state.kind === "ready" ? Promise.resolve() : new Promise((r) => this.#onReady.push(r));
  }

  /** The answer to one DER OCSPRequest; never throws: whatever happens, an OCSPResponse. */
  async respond(der: Uint8Array): Promise<OcspAnswer> {
    try {
      let request: ParsedRequest;
      try {
        request = parseRequest(der);
      } catch (e) {
        if (!(e instanceof Malformed)) throw e;
        this.#log?.debug({ err: e.message }, "OCSP: malformed request");
        return {
          der: statusOnly(OCSPResponseStatus.malformedRequest),
          status: OCSPResponseStatus.malformedRequest,
        };
      }
      return await this.#answer(request);
    } catch (e) {
      // An OCSP client parses nothing but an OCSPResponse (RFC 6960 §2.3): the record it needs
      // cannot be read now (tryLater), or something else went wrong here (internalError).
      const status =
        e instanceof Unavailable ? OCSPResponseStatus.tryLater : OCSPResponseStatus.internalError;
      this.#log?.error(
        { err: (e instanceof Unavailable && e.cause instanceof Error ? e.cause : (e as Error)).message },
        e instanceof Unavailable
          ? "OCSP: the certificate records cannot be read; answering tryLater"
          : "OCSP: cannot answer; answering internalError",
      );
      return { der: statusOnly(status), status };
    }
  }

  async #answer(request: ParsedRequest): Promise<OcspAnswer> {
    const state = this.#state;
    if (state.kind === "off")
      return { der: statusOnly(OCSPResponseStatus.unauthorized), status: OCSPResponseStatus.unauthorized };
    const caDer = await this.#read(() => this.#source.caCertificate());
    if (state.kind === "waiting" || !caDer)
      return { der: statusOnly(OCSPResponseStatus.tryLater), status: OCSPResponseStatus.tryLater };
    const now = Math.floor(this.#now() / 1000) * 1000; // RFC 5019 §2.2.4: no fractional seconds
    const signer = state.signer;
    if (signer.notAfter.getTime() <= now)
      return { der: statusOnly(OCSPResponseStatus.tryLater), status: OCSPResponseStatus.tryLater };
    // Never sign with a responder certificate this CA revoked, not even before the loop notices
    // (self-cert.ts withdraws it and asks for a new one): relying parties would not know, since
    // id-pkix-ocsp-nocheck tells them not to ask (RFC 6960 §4.2.2.2.1).
    if (await this.#read(() => this.revoked(signer.serial)))
      return { der: statusOnly(OCSPResponseStatus.tryLater), status: OCSPResponseStatus.tryLater };
    const issuer = issuerHashes(caDer);
    const ours = request.singles.map((c) => issuer.matches(c));
    if (!ours.some(Boolean))
      return { der: statusOnly(OCSPResponseStatus.unauthorized), status: OCSPResponseStatus.unauthorized };

    const thisUpdate = new Date(now);
    const nextUpdate = new Date(
      Math.min(
        now + OCSP_RESPONSE_VALIDITY_SECONDS * 1000,
        Math.floor(signer.notAfter.getTime() / 1000) * 1000,
      ),
    );
    const responses: SingleResponse[] = [];
    for (const [i, certID] of request.singles.entries()) {
      const status = ours[i] ? await this.#status(certID.serialNumber) : new CertStatus({ unknown: null });
      responses.push(new SingleResponse({ certID, certStatus: status, thisUpdate, nextUpdate }));
    }
    const data = new ResponseData({
      responderID: new ResponderID({ byKey: new KeyHash(toArrayBuffer(signer.keyHash)) }),
      producedAt: thisUpdate,
      responses,
      // RFC 8954 §2.1 / RFC 6960 §4.4.1: the nonce goes back exactly as it came.
      ...(request.nonce
        ? {
            responseExtensions: [
              new Extension({
                extnID: id_pkix_ocsp_nonce,
                critical: false,
                extnValue: new OctetString(toArrayBuffer(request.nonce)),
              }),
            ],
          }
        : {}),
    });
    const tbs = u8(AsnConvert.serialize(data));
    const signature = new Uint8Array(sign("sha256", tbs, { key: signer.key, dsaEncoding: "der" }));
    // BasicOCSPResponse (RFC 6960 §4.2.1), written here so the signed bytes are exactly `tbs`.
    const basic = seq(
      tbs,
      seq(oid(ECDSA_SHA256)),
      bitString(signature),
      ctx(0, true, seq(signer.certDer)), // certs: the responder certificate, so clients can verify
    );
    const response = seq(
      tlv(0x0a, Uint8Array.of(OCSPResponseStatus.successful)),
      ctx(0, true, seq(oid(id_pkix_ocsp_basic), octetString(basic))),
    );
    return {
      der: response,
      status: OCSPResponseStatus.successful,
      thisUpdate,
      nextUpdate,
      nonce: request.nonce !== undefined,
    };
  }

  /** A read of the source; its failure becomes Unavailable. */
  async #read<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw new Unavailable("the certificate records cannot be read", { cause: e });
    }
  }

  async #status(serialNumber: ArrayBuffer): Promise<CertStatus> {
    const hex = toHex(u8(serialNumber));
    // Only a positive, minimally encoded serial can be one this CA wrote (src/x509/serial.ts).
    if (hex === "" || storedSerial(hex) !== hex || hex.length > 42) return new CertStatus({ unknown: null });
    const rec = await this.#read(() => this.#source.certificate(hex));
    if (!rec) return new CertStatus({ unknown: null });
    if (!rec.revocation) return new CertStatus({ good: null });
    const revokedAt = Date.parse(rec.revocation.revokedAt);
    // Never sign an answer with a time that does not encode (asn1 writes NaN as garbage).
    if (!Number.isFinite(revokedAt))
      throw new Error(`the revocation record of ${hex} has no valid time: ${rec.revocation.revokedAt}`);
    const reason = rec.revocation.reason as RevocationReason;
    const code = REASON_CODES[reason];
    return new CertStatus({
      revoked: new RevokedInfo({
        revocationTime: new Date(Math.floor(revokedAt / 1000) * 1000),
        // As in the CRL (RFC 5280 §5.3.1): no reason rather than "unspecified".
        ...(code !== undefined && code !== 0 ? { revocationReason: new CRLReason(code) } : {}),
      }),
    });
  }
}

interface ParsedRequest {
  singles: CertID[];
  /** The nonce extension's extnValue, exactly as sent. */
  nonce?: Uint8Array;
}

/** Parses and checks an OCSPRequest (RFC 6960 §4.1.1); throws Malformed. */
export function parseRequest(der: Uint8Array): ParsedRequest {
  if (der.length === 0 || der.length > OCSP_MAX_REQUEST_BYTES) throw new Malformed(`${der.length} bytes`);
  let req: OCSPRequest;
  try {
    readDer(der); // one definite-length element, nothing after it
    req = AsnConvert.parse(toArrayBuffer(der), OCSPRequest);
  } catch (e) {
    throw new Malformed(`not a DER OCSPRequest: ${(e as Error).message}`);
  }
  const list = req.tbsRequest.requestList;
  if (list.length === 0) throw new Malformed("no single request");
  if (list.length > OCSP_MAX_SINGLE_REQUESTS) throw new Malformed(`${list.length} single requests`);
  const out: ParsedRequest = { singles: list.map((r) => r.reqCert) };
  const nonces = (req.tbsRequest.requestExtensions ?? []).filter((e) => e.extnID === id_pkix_ocsp_nonce);
  if (nonces.length > 1) throw new Malformed("more than one nonce");
  if (nonces.length === 1) {
    const value = u8(nonces[0]!.extnValue.buffer);
    // extnValue holds the DER of Nonce ::= OCTET STRING (SIZE(1..128)) (RFC 9654 §2.1).
    let inner: Uint8Array;
    try {
      const t = readDer(value);
      if (t.tag !== 0x04) throw new Error("not an OCTET STRING");
      inner = t.value;
    } catch (e) {
      throw new Malformed(`nonce: ${(e as Error).message}`);
    }
    if (inner.length < 1 || inner.length > OCSP_MAX_NONCE_OCTETS)
      throw new Malformed(`a nonce of ${inner.length} octets (RFC 9654: 1 to ${OCSP_MAX_NONCE_OCTETS})`);
    out.nonce = value;
  }
  return out;
}

/** This CA's issuerNameHash and issuerKeyHash under each hash a CertID may use (RFC 6960 §4.1.1). */
function issuerHashes(caDer: Uint8Array): { matches(c: CertID): boolean } {
  const ca = readCaCert(caDer);
  return {
    matches(c: CertID): boolean {
      const alg = CERT_ID_HASHES[c.hashAlgorithm.algorithm];
      if (!alg) return false;
      const h = (b: Uint8Array) => new Uint8Array(createHash(alg).update(b).digest());
      return (
        bytesEqual(u8(c.issuerNameHash.buffer), h(ca.subjectDer)) &&
        bytesEqual(u8(c.issuerKeyHash.buffer), h(ca.publicKeyRaw))
      );
    },
  };
}
