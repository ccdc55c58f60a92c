// The custodian exchange (docs/signing-pipeline.md): one POST carries a batch of signed envelopes
// from one custodian process and answers with everything waiting for it. The batch is one
// transaction, each envelope a savepoint inside it, so one bad item is refused with its own 4xx
// result and changes nothing, while the rest of the batch still counts (docs/architecture.md §3.10).
import type { LoadedConfig } from "../config/load.ts";
import { openEnvelope, rosterKeys, type EnvelopeHeader, type SignedEnvelope } from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  ExchangeRequestSchema,
  MAX_ITEMS,
  OfferBodySchema,
  type ExchangeResponse,
  type ItemResult,
} from "../protocol/signing-messages.ts";
import { CoordinatorError } from "./errors.ts";
import type { CoordinatorHooks } from "./hooks.ts";
import type { RequestService } from "./requests/index.ts";
import type { SigningService } from "./signing.ts";
import type { Store } from "./store/types.ts";
import { storeEnvelope } from "./stored-envelope.ts";
import { clock } from "./clock.ts";

export class ExchangeService {
  readonly #roster: Map<string, string>;
  /** Set while this replica shuts down: the long-polls it cuts are not processes going away. */
  #closing = false;

  constructor(
    private readonly store: Store,
    config: LoadedConfig,
    private readonly signing: SigningService,
    private readonly requests: Pick<RequestService, "decideOpened" | "reviewItems">,
    private readonly hooks: CoordinatorHooks,
  ) {
    this.#roster = rosterKeys(config.config.custodians);
  }

  /** `caller`: the custodian whose signed read authenticated this exchange (docs/security-model.md). */
  async exchange(raw: unknown, signal: AbortSignal | undefined, caller: string): Promise<ExchangeResponse> {
    const parsed = ExchangeRequestSchema.safeParse(raw);
    if (!parsed.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `invalid exchange: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
      );
    const req = parsed.data;
    if (!this.#roster.has(req.custodian))
      throw new CoordinatorError("BAD_REQUEST", `${req.custodian} is not in the roster`);
    if (req.custodian !== caller)
      throw new CoordinatorError(
        "FORBIDDEN",
        `this exchange is signed by ${caller}, not by ${req.custodian} whose work it asks for`,
      );
    // A process that is connected is alive (and may be in the packages formed below). Its instance
    // id is a random 128-bit value known only to it and to this coordinator, so nobody else can keep
    // a dead process's offers in use.
    await this.signing.seen(req.custodian, req.instance);
    let results: ItemResult[] = [];
    if (req.envelopes.length > 0) {
      // Signatures and senders are checked before the transaction: the write lock is held only for
      // envelopes that are this custodian's, so junk cannot hold up everyone's writes.
      const caKeyId = await this.signing.caKeyId;
      const opened = req.envelopes.map((env) => this.open(env, req.custodian, caKeyId));
      results = await this.store.transaction(async () => {
        const out: ItemResult[] = [];
        for (const o of opened) out.push("header" in o ? await this.item(o.header, o.json, req.instance) : o);
        if (out.some((r) => r.ok)) await this.signing.formPackages();
        return out;
      });
      for (const r of results) {
        const result = r.ok ? "accepted" : r.status >= 500 ? "error" : "refused";
        this.hooks.metrics.exchangeItems.inc({
          custodian: req.custodian,
          type: r.type || "unreadable",
          result,
        });
      }
      if (results.some((r) => r.ok)) this.hooks.changed();
    }
    const deadline = clock.now() + req.wait * 1000;
    let seq = this.hooks.feed.seq;
    for (;;) {
      await this.signing.seen(req.custodian, req.instance);
      const { wakeAt, ...answer } = await this.answer(
        req.custodian,
        req.instance,
        req.reviewCursor,
        req.review,
      );
      const busy = answer.tasks.length > 0 || answer.requests.length > 0;
      // It hung up: killed, or shut down (unless it is this replica that is going away).
      if (signal?.aborted && !this.#closing) this.signing.gone(req.custodian, req.instance);
      if (busy || clock.now() >= deadline || signal?.aborted) return { results, ...answer };
      // Wake on a change, or when a request waiting for its first reviewers becomes this one's too.
      const until = Math.min(deadline, wakeAt ?? deadline);
      seq = await this.hooks.feed.wait(seq, Math.max(10, until - clock.now()), signal);
    }
  }

  /** This replica is shutting down: connections it cuts say nothing about the custodians. */
  closing(): void {
    this.#closing = true;
  }

  private async answer(
    custodian: string,
    instance: string,
    cursor: string | null,
    review: boolean,
  ): Promise<Omit<ExchangeResponse, "results"> & { wakeAt?: number }> {
    // Offers before tasks: an offer that lands in a package between the two reads is then listed
    // in both (the process keeps its nonce) rather than in neither (it would drop it).
    const offered = await this.signing.openOfferKeys(custodian, instance);
    const tasks = await this.signing.tasksFor(custodian, instance, MAX_ITEMS);
    if (!review) return { tasks, requests: [], reviewCursor: cursor, offered };
    const r = await this.requests.reviewItems(
      custodian,
      cursor,
      MAX_ITEMS,
      clock.now(),
      `${custodian}/${instance}`,
    );
    return {
      tasks,
      requests: r.items,
      reviewCursor: r.cursor,
      offered,
      ...(r.wakeAt !== undefined ? { wakeAt: r.wakeAt } : {}),
    };
  }

  /** Checks an envelope's signature, context and sender; the header, or the item's 4xx result. */
  private open(
    env: SignedEnvelope,
    custodian: string,
    caKeyId: string | null,
  ): { header: EnvelopeHeader; json: string } | ItemResult {
    let h: EnvelopeHeader;
    try {
      h = openEnvelope(env, this.#roster, { recipient: "coordinator", caKeyId });
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      return { id: "", type: "", ok: false, status: 400, detail: e.message };
    }
    if (h.sender !== custodian)
      return {
        id: h.id,
        type: h.type,
        ok: false,
        status: 403,
        detail: `an envelope from ${h.sender} in ${custodian}'s exchange`,
      };
    return { header: h, json: JSON.stringify(env) };
  }

  /** One envelope, in a savepoint of the batch's transaction: a refusal undoes only its own writes. */
  private async item(h: EnvelopeHeader, json: string, instance: string): Promise<ItemResult> {
    const result = { id: h.id, type: h.type };
    try {
      await this.store.item(async () => {
        switch (h.type) {
          case "approval": {
            // After a reshare or repair, nothing is decided until the roster in force is ca-config's.
            const refusal = await this.signing.refusal();
            if (refusal) throw new CoordinatorError("CONFLICT", refusal);
            return this.requests.decideOpened(h, json);
          }
          case "sign/offer": {
            const b = OfferBodySchema.safeParse(h.body);
            if (b.success && b.data.instance !== instance)
              throw new CoordinatorError("BAD_REQUEST", `an offer for another process than ${instance}`);
            await storeEnvelope(this.store, h, json, b.success ? b.data.batch : 0);
            return this.signing.receiveOffer(h);
          }
          case "sign/withdraw":
            await storeEnvelope(this.store, h, json, 0, `${h.scope}/${h.id}`);
            return this.signing.receiveWithdraw(h);
          case "sign/share":
            return this.signing.receiveShare(h, json);
          case "sign/refusal":
            return this.signing.receiveRefusal(h, json);
          default:
            throw new CoordinatorError("BAD_REQUEST", `${h.type} does not belong in an exchange`);
        }
      });
      return { ...result, ok: true, status: 202 };
    } catch (e) {
      // The very same envelope again: its sender lost our answer (a dropped connection, a replica
      // that died after committing) and sent it again, perhaps to another replica. It was taken:
      // say so again, and nothing changed (its item was undone). Looked up only on a conflict, so
      // the common path costs no extra query. (Approvals check this themselves.)
      if (e instanceof CoordinatorError && e.status === 409 && h.type !== "approval") {
        const earlier = await this.store.getMessage(h.id);
        if (earlier && earlier.envelope === json) return { ...result, ok: true, status: 202 };
      }
      if (e instanceof CoordinatorError) return { ...result, ok: false, status: e.status, detail: e.message };
      // A fault of ours, not the sender's: this item is undone and reported, the batch goes on, and
      // the custodian does not resend a batch that can never pass.
      return { ...result, ok: false, status: 500, detail: "internal error while handling this item" };
    }
  }
}
