// RFC 9457 problem+json for every error. Internal causes are logged, never sent.
import type { ErrorRequestHandler, Response } from "express";
import { CoordinatorError, problemTitle } from "../errors.ts";
import type { Logger } from "pino";
import { WWW_AUTHENTICATE } from "./auth.ts";

export function sendProblem(res: Response, e: CoordinatorError): void {
  // RFC 9110 §15.5.2: a 401 names the schemes that would be accepted (src/coordinator/http/auth.ts).
  if (e.status === 401) res.set("WWW-Authenticate", WWW_AUTHENTICATE);
  res
    .status(e.status)
    .type("application/problem+json")
    .json({
      ...e.extra, // first, so it can never overwrite the RFC 9457 members
      type: `https://tca.dev/problems/${e.code.toLowerCase().replace(/_/g, "-")}`,
      title: problemTitle[e.code],
      status: e.status,
      detail: e.message,
      code: e.code,
    });
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    if (err instanceof CoordinatorError) return sendProblem(res, err);
    const status = (err as { status?: unknown; type?: unknown })?.status;
    const type = (err as { type?: unknown })?.type;
    if (status === 413 || type === "entity.too.large")
      return sendProblem(
        res,
        new CoordinatorError("PAYLOAD_TOO_LARGE", "the request body is larger than this endpoint accepts"),
      );
    if (type === "entity.parse.failed")
      return sendProblem(res, new CoordinatorError("BAD_REQUEST", "the request body is not valid JSON"));
    if (typeof status === "number" && status >= 400 && status < 500)
      return sendProblem(res, new CoordinatorError("BAD_REQUEST", "the request could not be read"));
    log.error({ err }, "unhandled error");
    sendProblem(res, new CoordinatorError("INTERNAL", "the coordinator hit an internal error; see its log"));
  };
}
