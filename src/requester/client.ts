// The requester's HTTP client: submit a CSR, follow a request, fetch its chain. Server errors are
// RFC 9457 problem+json; their `detail` becomes the error message.
import { z } from "zod";
import { RequestViewSchema, type RequestView } from "../protocol/approval.ts";
import { RequesterError } from "./errors.ts";

export const SubmittedSchema = z.object({
  id: z.string().min(1),
  status: RequestViewSchema.shape.status,
  serial: z.string().optional(),
  missing: z.number().optional(),
});
export type Submitted = z.infer<typeof SubmittedSchema>;

export interface Submission {
  csr: string;
  profile: string;
  validityHours?: number;
}

export class RequesterClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async submit(s: Submission): Promise<Submitted> {
    if (!this.token) throw new RequesterError("SERVER", "a requester token is needed to submit");
    const body = {
      csr: s.csr,
      profile: s.profile,
      ...(s.validityHours ? { validityHours: s.validityHours } : {}),
    };
    const res = await this.call("POST", "/api/v1/requests", body, true);
    return parse(SubmittedSchema, await res.text(), "POST /api/v1/requests");
  }

  /** The request; with `since` and `wait`, the coordinator answers once its state differs (long-poll). */
  async view(id: string, o: { since?: string; waitSeconds?: number } = {}): Promise<RequestView> {
    const base = `/api/v1/requests/${encodeURIComponent(id)}`;
    const q = o.since && o.waitSeconds ? `?since=${encodeURIComponent(o.since)}&wait=${o.waitSeconds}` : "";
    const res = await this.call("GET", base + q, undefined, false, (o.waitSeconds ?? 0) * 1000);
    return parse(RequestViewSchema, await res.text(), `GET ${base}`);
  }

  /** The PEM chain, leaf first. */
  async chain(id: string): Promise<string> {
    return (await this.call("GET", `/api/v1/requests/${encodeURIComponent(id)}/certificate`)).text();
  }

  private async call(
    method: string,
    path: string,
    body?: unknown,
    auth = false,
    extraMs = 0,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          accept: "application/json, application/problem+json, application/pem-certificate-chain",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(auth && this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs + extraMs),
      });
    } catch (e) {
      const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new RequesterError("UNREACHABLE", `cannot reach the coordinator at ${this.baseUrl}: ${cause}`);
    }
    if (res.ok) return res;
    const text = await res.text();
    let detail: string | undefined;
    try {
      const d = (JSON.parse(text) as { detail?: unknown }).detail;
      if (typeof d === "string" && d) detail = d;
    } catch {
      // not problem+json: fall back to the status line
    }
    const message =
      res.status < 500 && detail
        ? detail
        : `coordinator answered ${res.status} to ${method} ${path}${detail ? `: ${detail}` : text ? `: ${text.slice(0, 200)}` : ""}`;
    throw new RequesterError("SERVER", message, res.status);
  }
}

function parse<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RequesterError("SERVER", `coordinator sent a non-JSON answer to ${what}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new RequesterError("SERVER", `coordinator sent an unexpected answer to ${what}`);
  return r.data;
}
