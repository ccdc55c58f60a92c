// The requester's HTTP client: submit a CSR, follow a request, fetch its chain. A thin wrapper over
// the one HTTP client (src/protocol/http-client.ts), which fails over between several coordinator
// URLs. Server errors are RFC 9457 problem+json; their `detail` becomes the error message.
import { z } from "zod";
import { HttpClient, HttpError, plainHttpTokenProblem, type TlsOptions } from "../protocol/http-client.ts";
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
  readonly http: HttpClient;

  /**
   * `coordinators`: one URL, a comma-separated list or an array; the client fails over between them.
   * `tls.ca`: the PEM CA certificates an https:// coordinator must chain to (`--ca-file`), else
   * Node's built-in roots; never unverified.
   */
  constructor(
    coordinators: string | readonly string[],
    private readonly token?: string,
    private readonly timeoutMs = 30_000,
    o: { tls?: TlsOptions } = {},
  ) {
    try {
      this.http = new HttpClient(coordinators, o.tls ? { tls: o.tls } : {});
    } catch (e) {
      throw new RequesterError("SERVER", (e as Error).message);
    }
    // A bearer token never crosses the network in clear (docs/tls.md).
    const plain = token ? plainHttpTokenProblem(this.http.urls) : undefined;
    if (plain) throw new RequesterError("USAGE", plain);
  }

  /** The coordinator tried first: the one that answered last. */
  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /**
   * Submits a CSR. Not idempotent (each POST makes a new request): it goes to another coordinator
   * only if the first certainly did not get it (connection refused, 503).
   */
  async submit(s: Submission): Promise<Submitted> {
    if (!this.token) throw new RequesterError("SERVER", "a requester token is needed to submit");
    const body = {
      csr: s.csr,
      profile: s.profile,
      ...(s.validityHours ? { validityHours: s.validityHours } : {}),
    };
    const text = await this.call("POST", "/api/v1/requests", { body, token: this.token, idempotent: false });
    return parse(SubmittedSchema, text, "POST /api/v1/requests");
  }

  /** The request; with `since` and `wait`, the coordinator answers once its state differs (long-poll). */
  async view(id: string, o: { since?: string; waitSeconds?: number } = {}): Promise<RequestView> {
    const base = `/api/v1/requests/${encodeURIComponent(id)}`;
    const q = o.since && o.waitSeconds ? `?since=${encodeURIComponent(o.since)}&wait=${o.waitSeconds}` : "";
    // Reads carry the token too: a requester sees only its own requests (docs/security-model.md).
    const text = await this.call("GET", base + q, {
      ...(this.token ? { token: this.token } : {}),
      extraMs: (o.waitSeconds ?? 0) * 1000,
    });
    return parse(RequestViewSchema, text, `GET ${base}`);
  }

  /** The PEM chain, leaf first. */
  async chain(id: string): Promise<string> {
    return this.call("GET", `/api/v1/requests/${encodeURIComponent(id)}/certificate`, {
      ...(this.token ? { token: this.token } : {}),
      accept: "application/pem-certificate-chain, application/problem+json",
    });
  }

  private async call(
    method: string,
    path: string,
    o: { body?: unknown; token?: string; idempotent?: boolean; extraMs?: number; accept?: string } = {},
  ): Promise<string> {
    try {
      return await this.http.text(method, path, {
        ...(o.body === undefined ? {} : { body: o.body }),
        ...(o.token ? { token: o.token } : {}),
        ...(o.idempotent === undefined ? {} : { idempotent: o.idempotent }),
        ...(o.accept ? { accept: o.accept } : {}),
        timeoutMs: this.timeoutMs + (o.extraMs ?? 0),
      });
    } catch (e) {
      throw toRequesterError(e);
    }
  }
}

/** Maps the HTTP client's one error class onto the requester's kinds (and so its exit codes). */
export function toRequesterError(e: unknown): unknown {
  if (!(e instanceof HttpError)) return e;
  const created =
    e.maybeProcessed && e.info.method === "POST" && e.info.path === "/api/v1/requests"
      ? " — the request may have been created: check before submitting again"
      : "";
  if (e.kind === "unreachable") return new RequesterError("UNREACHABLE", e.message + created);
  if (e.kind === "malformed") return new RequesterError("SERVER", e.message);
  const status = e.status ?? 0;
  const message = status < 500 && e.detail ? e.detail : e.message;
  return new RequesterError("SERVER", message + created, e.status);
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
