// Waiting for a request to finish: a long-poll on the request's state (the coordinator answers as
// soon as an approval arrives or the status changes), so progress shows at once and nothing polls.
import type { RequestView } from "../protocol/approval.ts";
import type { RequesterClient } from "./client.ts";
import { requestState } from "../protocol/approval.ts";
import { RequesterError } from "./errors.ts";
import { displaySerial } from "../x509/serial.ts";

export const FINAL = ["issued", "rejected", "failed"] as const;
export type FinalStatus = (typeof FINAL)[number];

export interface WaitOptions {
  /** 0 = no limit. */
  timeoutMs: number;
  /** Pause before retrying after network trouble. */
  intervalMs?: number;
  /** Called with a line each time the state visibly changes. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

/** A one-line account of a request's state: "pending: 1 of 2 approvals…", "signing…", … */
export function describeState(v: RequestView): string {
  switch (v.status) {
    case "pending":
      return `pending: ${v.threshold - v.missing} of ${v.threshold} approvals, waiting for ${v.missing} more…`;
    case "signing": {
      const s = v.signing?.signers;
      if (s && s.missing > 0)
        return `signing: waiting for ${s.missing} more signer${s.missing === 1 ? "" : "s"} (${s.available} of ${v.threshold} online)…`;
      if (s && s.waitingFor.length > 0) return `signing: waiting for shares from ${s.waitingFor.join(", ")}…`;
      return "signing…";
    }
    case "issued":
      return `issued: serial ${displaySerial(v.serial)}`;
    case "rejected":
      return v.rejection ? `rejected by ${v.rejection.by}: ${v.rejection.reason}` : "rejected";
    case "failed":
      return `failed: ${v.failure ?? "signing failed"}`;
  }
}

/** Seconds one long-poll may last (the coordinator allows up to 60). */
const LONG_POLL_S = 25;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), res()), { once: true });
  });

/**
 * Follows request `id` until it is issued, rejected or failed, and returns that view. Network
 * trouble while waiting is retried until the deadline; a 4xx answer ends the wait.
 */
export async function waitForRequest(
  client: RequesterClient,
  id: string,
  o: WaitOptions,
): Promise<RequestView> {
  const interval = o.intervalMs ?? 300;
  const deadline = o.timeoutMs > 0 ? Date.now() + o.timeoutMs : Infinity;
  let last = "";
  let lastView: RequestView | undefined;
  let troubled = false;
  let since: string | undefined;
  for (;;) {
    try {
      const left = deadline === Infinity ? LONG_POLL_S : Math.floor((deadline - Date.now()) / 1000);
      const waitSeconds = Math.max(0, Math.min(LONG_POLL_S, left));
      const view = await client.view(id, since && waitSeconds > 0 ? { since, waitSeconds } : {});
      since = requestState(view);
      lastView = view;
      troubled = false;
      const line = describeState(view);
      if (line !== last) {
        last = line;
        o.onProgress?.(line);
      }
      if ((FINAL as readonly string[]).includes(view.status)) return view;
    } catch (e) {
      const transient =
        e instanceof RequesterError &&
        (e.kind === "UNREACHABLE" || (e.status !== undefined && e.status >= 500));
      if (!transient) throw e;
      if (!troubled) o.onProgress?.(`${e.message}; retrying…`);
      troubled = true;
      if (Date.now() >= deadline) throw e;
    }
    if (o.signal?.aborted) throw new RequesterError("TIMEOUT", `stopped waiting for request ${id}`);
    if (Date.now() + (troubled ? interval : 1000) > deadline)
      throw new RequesterError(
        "TIMEOUT",
        `request ${id} is still ${lastView ? describeState(lastView).replace(/…$/, "") : "not finished"} after ${Math.round(o.timeoutMs / 1000)} s`,
      );
    if (troubled) await sleep(interval, o.signal);
  }
}
