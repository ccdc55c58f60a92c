// OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5-§6): POST /ocsp with the DER request as body
// (application/ocsp-request), and GET /ocsp/{base64 of the DER request, URL-encoded}. Both answer
// application/ocsp-response with HTTP 200 whatever the OCSP status, as clients expect; a body over
// the limit is a 413 problem. Public, like /crl: relying parties fetch it over plain http://.
import express, { type Request, type Response, type Router } from "express";
import { OCSPResponseStatus } from "@peculiar/asn1-ocsp";
import { OCSP_MAX_REQUEST_BYTES, statusOnly, type OcspAnswer, type OcspResponder } from "./responder.ts";

export const OCSP_PATH = "/ocsp";
const RESPONSE_TYPE = "application/ocsp-response";

/** base64 (RFC 4648 §4), padding optional; the decoded bytes, or undefined. */
function decodeBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  // Base64 text four characters per three bytes: anything longer cannot decode within the limit.
  if (text.length > Math.ceil(OCSP_MAX_REQUEST_BYTES / 3) * 4) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

function send(res: Response, a: OcspAnswer, get: boolean): void {
  res.status(200).type(RESPONSE_TYPE);
  if (get && a.status === OCSPResponseStatus.successful && a.thisUpdate && a.nextUpdate && !a.nonce) {
    // RFC 5019 §6.2: caches may keep a GET answer until nextUpdate, and must then ask again.
    const maxAge = Math.max(0, Math.floor((a.nextUpdate.getTime() - Date.now()) / 1000));
    res.set("Cache-Control", `max-age=${maxAge}, public, no-transform, must-revalidate`);
    res.set("Last-Modified", a.thisUpdate.toUTCString());
    res.set("Expires", a.nextUpdate.toUTCString());
  } else {
    // An answer echoing a nonce is for one request only; an error may change at any moment.
    res.set("Cache-Control", "no-cache, no-store, must-revalidate");
  }
  res.send(Buffer.from(a.der));
}

/** Registers POST /ocsp and GET /ocsp/{request}. `responder` is read per request (none: unauthorized). */
export function ocspRoutes(r: Router, responder: () => OcspResponder | undefined): void {
  const answer = async (der: Uint8Array | undefined): Promise<OcspAnswer> => {
    const o = responder();
    if (!der)
      return {
        der: statusOnly(OCSPResponseStatus.malformedRequest),
        status: OCSPResponseStatus.malformedRequest,
      };
    if (!o)
      return { der: statusOnly(OCSPResponseStatus.unauthorized), status: OCSPResponseStatus.unauthorized };
    return o.respond(der);
  };
  // Any content type: a client that forgets application/ocsp-request still gets an OCSP answer.
  const body = express.raw({ type: () => true, limit: OCSP_MAX_REQUEST_BYTES });
  r.post(OCSP_PATH, body, async (req: Request, res: Response) => {
    const der = Buffer.isBuffer(req.body) && req.body.length > 0 ? new Uint8Array(req.body) : undefined;
    send(res, await answer(der), false);
  });
  const get = async (req: Request, res: Response) => {
    // req.path is not decoded: a client that did not escape "/" in the base64 sends several
    // segments, which belong together; %2F, %2B and %3D are decoded here (RFC 5019 §5).
    let text: string | undefined;
    try {
      text = decodeURIComponent(req.path.slice(OCSP_PATH.length + 1));
    } catch {
      text = undefined;
    }
    send(res, await answer(text === undefined ? undefined : decodeBase64(text)), true);
  };
  r.get(`${OCSP_PATH}/:request`, get);
  // The same for an unescaped "/" in the base64 (several path segments after /ocsp/).
  r.use((req, res, next) => {
    if (
      req.method === "GET" &&
      req.path.startsWith(`${OCSP_PATH}/`) &&
      req.path.length > OCSP_PATH.length + 1
    )
      return void get(req, res).catch(next);
    next();
  });
}
