// http-01 (RFC 8555 §8.3): GET http://<identifier>/.well-known/acme-challenge/<token> and compare
// the body with the key authorization. The connection goes to an address looked up by
// resolve.ts (the configured resolver or the system's) with the identifier in the Host header, so
// what is fetched is what the name points at, on the configured port (80 in production).
//
// Redirects are not followed, although §8.3 says the server SHOULD follow them: a CA that sits
// inside a private network would otherwise fetch any URL of that network a client names
// (§10.2 discusses the risk). A redirect fails validation with a detail that says so.
import { request } from "node:http";
import { isIP } from "node:net";
import type { AcmeValidationOptions, ChallengeToValidate } from "../context.ts";
import {
  beforeDeadline,
  Deadline,
  hostPort,
  overAddresses,
  quoted,
  validationAddresses,
  ValidationFailure,
} from "./resolve.ts";

/**
 * The most of a response body read; the rest is cut. A key authorization is a token, a dot and a
 * 43-character thumbprint (RFC 8555 §8.1): 66 characters for this server's tokens, at most 172 for
 * any token validateChallenge accepts. A longer body is wrong whatever follows, so little is read:
 * a validation's memory and work stay small.
 */
export const HTTP01_MAX_BODY_BYTES = 1024;

/** RFC 8555 §8.3's trailing whitespace: space, tab, CR, LF. */
const TRAILING_WHITESPACE = new Set([" ", "\t", "\r", "\n"]);

/**
 * `text` without trailing spaces, tabs, CRs and LFs (RFC 8555 §8.3), in time linear in its length.
 * A regular expression such as /[ \t\r\n]+$/ is quadratic on a run of whitespace followed by
 * anything else (it retries the run from every position), which a body can be made of.
 */
export function trimTrailingWhitespace(text: string): string {
  let end = text.length;
  while (end > 0 && TRAILING_WHITESPACE.has(text[end - 1]!)) end--;
  return text.slice(0, end);
}

interface Fetched {
  status: number;
  location: string | undefined;
  body: Buffer;
  /** The body was longer than HTTP01_MAX_BODY_BYTES and was cut there. */
  cut: boolean;
}

/** "host" or "[v6]", with ":port" unless it is 80 (RFC 9110 §7.2: the Host header names the port). */
function authority(host: string, port: number): string {
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return port === 80 ? h : `${h}:${port}`;
}

function connectionFailure(e: unknown, target: string, deadline: Deadline): ValidationFailure {
  if (deadline.expired)
    return new ValidationFailure("connection", `${target}: no answer within ${deadline.ms} ms`);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("HPE_"))
    return new ValidationFailure("incorrectResponse", `${target} did not answer with HTTP (${code})`);
  const why =
    code === "ECONNREFUSED"
      ? "connection refused"
      : code === "ECONNRESET"
        ? "connection reset"
        : typeof code === "string"
          ? code
          : e instanceof Error
            ? e.message
            : String(e);
  return new ValidationFailure("connection", `${target}: ${why}`);
}

/** One GET to one address; the body read up to HTTP01_MAX_BODY_BYTES; the connection closed after. */
function fetchAt(
  address: string,
  port: number,
  host: string,
  path: string,
  target: string,
  deadline: Deadline,
): Promise<Fetched> {
  return new Promise<Fetched>((resolve, reject) => {
    const req = request({
      host: address,
      port,
      path,
      method: "GET",
      headers: { Host: host, Accept: "*/*", "User-Agent": "tca-acme-validation" },
      // A fresh connection each time (no pool), closed once the answer is read.
      agent: false,
      signal: deadline.signal,
    });
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(connectionFailure(e, target, deadline));
    };
    req.on("error", fail);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (cut: boolean): void => {
        if (settled) return;
        settled = true;
        const body = Buffer.concat(chunks, size).subarray(0, HTTP01_MAX_BODY_BYTES);
        req.destroy();
        const location = res.headers.location;
        resolve({ status: res.statusCode ?? 0, location, body, cut });
      };
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size > HTTP01_MAX_BODY_BYTES) done(true);
      });
      res.on("end", () => done(false));
      res.on("error", fail);
      res.on("aborted", () =>
        fail(Object.assign(new Error("the answer was cut short"), { code: "ECONNRESET" })),
      );
    });
    req.end();
  });
}

export async function validateHttp01(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
  deadline: Deadline,
): Promise<void> {
  const path = `/.well-known/acme-challenge/${c.token}`;
  const host = authority(c.identifier.value, o.httpPort);
  const url = `http://${host}${path}`;
  const addresses = await validationAddresses(c.identifier, o, deadline);
  await overAddresses(addresses, deadline, async (address) => {
    const target = `${url} (connecting to ${hostPort(address, o.httpPort)})`;
    const got = await beforeDeadline(
      fetchAt(address, o.httpPort, host, path, target, deadline),
      deadline,
      () => new ValidationFailure("connection", `${target}: no answer within ${deadline.ms} ms`),
    );
    if (got.status >= 300 && got.status < 400)
      throw new ValidationFailure(
        "incorrectResponse",
        `${target} answered ${got.status}, a redirect` +
          (got.location ? ` to ${quoted(got.location)}` : "") +
          `: redirects are not followed; serve the key authorization at ${url} itself`,
      );
    const text = got.body.toString("utf8");
    if (got.status !== 200)
      throw new ValidationFailure(
        "incorrectResponse",
        `${target} answered ${got.status}, expected 200 with the key authorization` +
          (text.length > 0 ? `; the body began ${quoted(text)}` : ""),
      );
    // RFC 8555 §8.3: trailing whitespace is ignored.
    const answered = trimTrailingWhitespace(text);
    if (answered !== c.keyAuthorization)
      throw new ValidationFailure(
        "incorrectResponse",
        `${target} answered ${quoted(answered)}` +
          (got.cut ? ` (${HTTP01_MAX_BODY_BYTES} bytes read, the rest not)` : "") +
          `, expected the key authorization ${quoted(c.keyAuthorization)}`,
      );
  });
}
