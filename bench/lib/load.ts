// The load generator: k concurrent requesters, each submitting a CSR over the stable HTTP contract
// (README; docs/benchmarks.md) and long-polling for its certificate, until every CSR is used or the
// phase's time is up. Latency is submit → PEM chain received. Never hangs: at the deadline no new
// request starts and every open exchange is aborted; what was reached is reported.
// Against several coordinator replicas (`urls`), submissions and certificate fetches go round-robin
// over them, each on its own rotation, as a round-robin load balancer would send them: a request's
// certificate is often fetched from another replica than the one that took the request.
import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { HttpClient, percentile } from "./http.ts";

export interface LoadOptions {
  url: string;
  /** Coordinator replicas of one CA: when given (non-empty), used round-robin instead of `url`. */
  urls?: readonly string[];
  token: string;
  csrs: readonly string[];
  concurrency: number;
  maxSeconds: number;
  profile?: string;
}

export interface LoadResult {
  concurrency: number;
  target: number;
  submitted: number;
  issued: number;
  /** Requests the CA refused or that ended rejected/failed. */
  failed: number;
  /** Submitted but neither issued nor failed when the phase ended. */
  stuck: number;
  timedOut: boolean;
  seconds: number;
  certsPerSecond: number;
  latencyMs: { p50?: number; p95?: number; p99?: number; max?: number; mean?: number };
  /** Error kinds ("submit 429", "certificate rejected", "network ECONNRESET", …) → count. */
  errors: Record<string, number>;
}

const round = (v: number | undefined, digits = 1) =>
  v === undefined ? undefined : Number(v.toFixed(digits));

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const client = new HttpClient(o.concurrency + 4);
  const auth = { authorization: `Bearer ${o.token}`, "content-type": "application/json" };
  const deadline = performance.now() + o.maxSeconds * 1000;
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per open exchange
  const timer = setTimeout(() => stop.abort(), o.maxSeconds * 1000);
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const error = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);
  const targets = o.urls?.length ? o.urls : [o.url];
  let submitTurn = 0;
  let fetchTurn = 0;
  const submitUrl = () => targets[submitTurn++ % targets.length]!;
  const fetchUrl = () => targets[fetchTurn++ % targets.length]!;
  let next = 0;
  let submitted = 0;
  let failed = 0;
  const open = new Set<string>(); // submitted, not yet issued or failed

  const worker = async () => {
    while (!stop.signal.aborted && performance.now() < deadline) {
      const i = next++;
      if (i >= o.csrs.length) return;
      const started = performance.now();
      let id: string | undefined;
      try {
        const res = await client.request("POST", `${submitUrl()}/api/v1/requests`, {
          headers: auth,
          body: JSON.stringify({ csr: o.csrs[i], profile: o.profile ?? "server" }),
          signal: stop.signal,
        });
        if (res.status !== 202 && res.status !== 201) {
          failed++;
          error(`submit ${res.status}`);
          continue;
        }
        submitted++;
        id = (JSON.parse(res.body) as { id: string }).id;
        open.add(id);
        for (;;) {
          const left = Math.ceil((deadline - performance.now()) / 1000);
          if (left <= 0) return;
          const asked = performance.now();
          const c = await client.request(
            "GET",
            `${fetchUrl()}/api/v1/requests/${id}/certificate?wait=${Math.min(60, left)}`,
            { headers: { authorization: auth.authorization }, signal: stop.signal },
          );
          if (c.status === 200) {
            latencies.push(performance.now() - started);
            open.delete(id!);
            break;
          }
          // 409 while pending or signing; a final status means this request will never issue.
          const status = c.status === 409 ? /"requestStatus":"(\w+)"/.exec(c.body)?.[1] : undefined;
          if (c.status === 409 && status !== "rejected" && status !== "failed") {
            // A server that answers before `wait` is up must not turn this into a busy loop.
            if (performance.now() - asked < 100) await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          open.delete(id!);
          failed++;
          error(`certificate ${status ?? c.status}`);
          break;
        }
      } catch (e) {
        if (stop.signal.aborted) return;
        error(`network ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        if (id) open.delete(id);
        failed++;
      }
    }
  };

  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  const timedOut = stop.signal.aborted || performance.now() >= deadline;
  stop.abort();
  client.close();
  const issued = latencies.length;
  return {
    concurrency: o.concurrency,
    target: o.csrs.length,
    submitted,
    issued,
    failed,
    stuck: open.size,
    timedOut,
    seconds: Number(seconds.toFixed(2)),
    certsPerSecond: Number((issued / seconds).toFixed(2)),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p95: round(percentile(latencies, 95)),
      p99: round(percentile(latencies, 99)),
      max: round(percentile(latencies, 100)),
      mean: round(issued ? latencies.reduce((a, b) => a + b, 0) / issued : undefined),
    },
    errors,
  };
}
