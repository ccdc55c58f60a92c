// The custodian's link to the coordinator(s): a thin wrapper over the one HTTP client
// (src/protocol/http-client.ts), which fails over between several coordinator URLs, that turns its
// errors into CustodianErrors for the CLI's exit codes. Outbound only; every answer is parsed with a
// schema before use.
import type { z } from "zod";
import { HttpClient, HttpError, type RequestOptions } from "../protocol/http-client.ts";
import { CustodianError } from "./errors.ts";

export interface CallOptions {
  token?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Whether sending the request twice (again, or to another coordinator) is harmless. Default: true
   * for GETs and for POSTs of one signed envelope (the coordinator refuses a replayed id).
   */
  idempotent?: boolean;
  /** The older name of `idempotent`. */
  retryOnReset?: boolean;
}

/** A signed envelope ({payload, signature}, src/protocol/envelope.ts): unique id, deduplicated. */
function isSignedEnvelope(body: unknown): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return false;
  const keys = Object.keys(body);
  const b = body as { payload?: unknown; signature?: unknown };
  return keys.length === 2 && typeof b.payload === "string" && typeof b.signature === "string";
}

/** CustodianError with the HTTP status of a coordinator's refusal (dkg-runner reads `status`). */
export type CoordinatorError = CustodianError & { status?: number; problemCode?: string };

export function toCustodianError(e: unknown): unknown {
  if (!(e instanceof HttpError)) return e;
  if (e.kind === "unreachable") return new CustodianError("COORDINATOR_UNREACHABLE", e.message);
  const err: CoordinatorError = new CustodianError("COORDINATOR_ERROR", e.message);
  if (e.kind === "status") {
    err.status = e.status;
    if (e.code) err.problemCode = e.code;
  }
  return err;
}

export class CoordinatorClient {
  readonly http: HttpClient;
  readonly #headers: RequestOptions["headers"];

  /**
   * One coordinator URL, several (a comma-separated list or an array), or a shared HttpClient.
   * `headers` adds headers to every request, computed per attempt (a custodian's signed reads:
   * src/custodian/connect.ts).
   */
  constructor(
    urls: string | readonly string[] | HttpClient,
    o: { headers?: RequestOptions["headers"] } = {},
  ) {
    this.http = urls instanceof HttpClient ? urls : new HttpClient(urls);
    this.#headers = o.headers;
  }

  /** The coordinator tried first: the one that answered last. */
  get baseUrl(): string {
    return this.http.baseUrl;
  }

  get urls(): readonly string[] {
    return this.http.urls;
  }

  async get<T>(path: string, schema: z.ZodType<T>, o: CallOptions = {}): Promise<T> {
    return this.call("GET", path, undefined, schema, o);
  }

  async post<T>(path: string, body: unknown, schema: z.ZodType<T>, o: CallOptions | string = {}): Promise<T> {
    return this.call("POST", path, body, schema, typeof o === "string" ? { token: o } : o);
  }

  /** A text answer (PEM). */
  async text(path: string, o: CallOptions = {}): Promise<string> {
    try {
      return await this.http.text("GET", path, { ...this.options("GET", undefined, o), accept: "*/*" });
    } catch (e) {
      throw toCustodianError(e);
    }
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    o: CallOptions,
  ): Promise<T> {
    try {
      return await this.http.json(method, path, schema, this.options(method, body, o));
    } catch (e) {
      throw toCustodianError(e);
    }
  }

  private options(method: string, body: unknown, o: CallOptions): RequestOptions {
    const idempotent =
      o.idempotent ?? o.retryOnReset ?? (method === "GET" || (method === "POST" && isSignedEnvelope(body)));
    return {
      idempotent,
      ...(body === undefined ? {} : { body }),
      ...(o.token ? { token: o.token } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(this.#headers ? { headers: this.#headers } : {}),
    };
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
