// One custodian process's link to the coordinator's exchange (docs/signing-pipeline.md). Every
// round sends what is queued (approvals, shares, refusals) plus fresh commitment offers to keep the
// pool full, and returns what waits for this process. Envelopes of a round that failed in transit
// are sent again: the coordinator refuses duplicates, so a resend is harmless.
import type { SignedEnvelope } from "../protocol/envelope.ts";
import {
  ExchangeResponseSchema,
  MAX_BATCH,
  type ExchangeRequest,
  type ExchangeResponse,
  type ItemResult,
} from "../protocol/signing-messages.ts";
import type { CoordinatorClient } from "./client.ts";
import type { SigningParticipant } from "./signer.ts";

export interface RoundOptions {
  /** Seconds the coordinator may hold the answer while there is nothing to do. */
  wait?: number;
  /** Whether to receive requests to review (agents) or only signing tasks (a person's CLI). */
  review?: boolean;
  signal?: AbortSignal;
}

/** How a round reaches the coordinator: over HTTP, or straight into its service in tests. */
export type ExchangeTransport = (
  body: ExchangeRequest,
  o: { timeoutMs: number; signal?: AbortSignal },
) => Promise<ExchangeResponse>;

export function httpTransport(client: CoordinatorClient): ExchangeTransport {
  // Re-sending an exchange is harmless: every envelope in it is refused the second time.
  return (body, o) =>
    client.post("/api/v1/custodians/exchange", body, ExchangeResponseSchema, { ...o, retryOnReset: true });
}

export class ExchangeLink {
  #queue: SignedEnvelope[] = [];
  #cursor: string | null = null;
  readonly #transport: ExchangeTransport;

  constructor(
    transport: CoordinatorClient | ExchangeTransport,
    private readonly custodian: string,
    readonly participant: SigningParticipant,
  ) {
    this.#transport = typeof transport === "function" ? transport : httpTransport(transport);
  }

  /** Queues envelopes for the next round. */
  send(...envelopes: SignedEnvelope[]): void {
    this.#queue.push(...envelopes);
  }

  get queued(): number {
    return this.#queue.length;
  }

  async round(o: RoundOptions = {}): Promise<ExchangeResponse> {
    const offer = this.participant.offer();
    if (offer) this.#queue.unshift(offer); // first, so it is in this round's batch with its nonces
    const batch = this.#queue.slice(0, MAX_BATCH);
    const wait = this.#queue.length > MAX_BATCH ? 0 : (o.wait ?? 0);
    const res = await this.#transport(
      {
        custodian: this.custodian,
        instance: this.participant.instance,
        envelopes: batch,
        wait,
        reviewCursor: this.#cursor,
        review: o.review ?? true,
      },
      { timeoutMs: (wait + 30) * 1000, ...(o.signal ? { signal: o.signal } : {}) },
    );
    this.#queue = this.#queue.slice(batch.length);
    this.#cursor = res.reviewCursor;
    this.participant.sync(res.offered, res.tasks);
    return res;
  }

  /** On shutdown: hands back every commitment of this process and sends what is still queued. */
  async close(): Promise<void> {
    this.send(this.participant.withdrawAll());
    try {
      await this.#transport(
        {
          custodian: this.custodian,
          instance: this.participant.instance,
          envelopes: this.#queue.slice(0, MAX_BATCH),
          wait: 0,
          reviewCursor: this.#cursor,
          review: false,
        },
        { timeoutMs: 5_000 },
      );
    } catch {
      // Shutting down: the coordinator's share timeout covers what did not arrive.
    }
    this.#queue = [];
  }
}

export function failedResults(results: readonly ItemResult[]): ItemResult[] {
  return results.filter((r) => !r.ok);
}
