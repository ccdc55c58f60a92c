// The custodian's HTTP client. Outbound only; every answer is parsed with a schema before use.
import type { z } from "zod";
import { CustodianError } from "./errors.ts";

export interface CallOptions {
  token?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Whether a request may be sent again after its connection was reset (GETs, and idempotent POSTs). */
  retryOnReset?: boolean;
}

function isConnectionReset(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } } | undefined)?.cause;
  return ["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"].includes(cause?.code ?? "");
}

export class CoordinatorClient {
  constructor(readonly baseUrl: string) {}

  async get<T>(path: string, schema: z.ZodType<T>, o: CallOptions = {}): Promise<T> {
    return this.call("GET", path, undefined, schema, o);
  }

  async post<T>(path: string, body: unknown, schema: z.ZodType<T>, o: CallOptions | string = {}): Promise<T> {
    return this.call("POST", path, body, schema, typeof o === "string" ? { token: o } : o);
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    { token, timeoutMs = 30_000, signal, retryOnReset = method === "GET" }: CallOptions,
  ): Promise<T> {
    let res: Response | undefined;
    for (let attempt = 0; !res; attempt++) {
      try {
        res = await fetch(new URL(path, this.baseUrl), {
          method,
          headers: {
            accept: "application/json",
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
            : AbortSignal.timeout(timeoutMs),
        });
      } catch (e) {
        // A kept-alive connection the server closed just as this request went out: send it once
        // more on a fresh connection, if sending twice is harmless.
        if (retryOnReset && attempt === 0 && !signal?.aborted && isConnectionReset(e)) continue;
        throw new CustodianError(
          "COORDINATOR_UNREACHABLE",
          `cannot reach the coordinator at ${this.baseUrl}: ${(e as Error).message}`,
        );
      }
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const detail = (json as { detail?: unknown })?.detail;
      const err = new CustodianError(
        "COORDINATOR_ERROR",
        `coordinator answered ${res.status} to ${method} ${path}: ${typeof detail === "string" ? detail : text.slice(0, 200)}`,
      );
      (err as CustodianError & { status?: number }).status = res.status;
      throw err;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new CustodianError(
        "COORDINATOR_ERROR",
        `coordinator sent an unexpected answer to ${method} ${path}`,
      );
    return parsed.data;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
