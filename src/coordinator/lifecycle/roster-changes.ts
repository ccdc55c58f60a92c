// Roster changes at the coordinator (docs/key-lifecycle.md, "Roster changes"): custodians of the
// roster in force sign a statement naming the new roster; the coordinator collects the signatures
// by the statement's `to` digest and plans a reshare or repair only for a change with t valid ones.
// The coordinator decides nothing here: every participant checks the same signatures again before
// it takes part, so a coordinator that lied about a change would only stall the ceremony.
import { canonicalJson } from "../../common/canonical-json.ts";
import { verifyEd25519 } from "../../common/ed25519.ts";
import {
  checkRosterChange,
  rosterChangeBytes,
  RosterChangeStatementSchema,
  RosterSignatureSubmitSchema,
  type RosterChangeStatement,
  type SignedRosterChange,
} from "../../protocol/roster.ts";
import type { RosterView } from "../../protocol/lifecycle.ts";
import { CoordinatorError } from "../errors.ts";
import type { CoordinatorHooks } from "../hooks.ts";
import type { Store } from "../store/types.ts";
import { appendAudit } from "../audit/log.ts";
import { clock } from "../clock.ts";
import type { KeyStateInForce, KeyStateReader } from "./key-state.ts";
import type { LifecycleDatabase } from "./tables.ts";

export type RosterChangeEntry = RosterView["changes"][number];

export class RosterChanges {
  constructor(
    private readonly store: Store,
    private readonly keyState: KeyStateReader,
    private readonly hooks: CoordinatorHooks,
  ) {}

  private db() {
    return this.store.queryBuilder<LifecycleDatabase>();
  }

  /**
   * `POST /api/v1/roster/signatures`: one custodian's signature on a change from the key state in
   * force. The signature is the authentication: it must verify under the signer's key in the roster
   * in force. Sending the same signature again changes nothing.
   */
  async submit(raw: unknown): Promise<RosterChangeEntry> {
    const parsed = RosterSignatureSubmitSchema.safeParse(raw);
    if (!parsed.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `invalid roster signature: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
      );
    const { statement, signature } = parsed.data;
    const ks = await this.keyState.current();
    if (!ks) throw new CoordinatorError("CONFLICT", "the CA has no key yet: there is no roster to change");
    const stale = staleness(statement, ks);
    if (stale) throw new CoordinatorError("CONFLICT", stale);
    if (statement.to === statement.from)
      throw new CoordinatorError("BAD_REQUEST", "the new roster is the roster in force: nothing to change");
    const member = ks.state.roster.custodians.find((c) => c.name === signature.signer);
    if (!member)
      throw new CoordinatorError(
        "FORBIDDEN",
        `${signature.signer} is not a custodian of the roster in force: only its members sign a change`,
      );
    const ok = verifyEd25519(
      new Uint8Array(Buffer.from(signature.signature, "base64url")),
      rosterChangeBytes(statement),
      new Uint8Array(Buffer.from(member.signingKey, "base64url")),
    );
    if (!ok)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `the signature does not verify under ${signature.signer}'s signing key in the roster in force`,
      );
    const text = canonicalJson(statement);
    await this.store.transaction(async () => {
      const now = clock.iso();
      // Again under the write lock: a ceremony that completed since the checks above changed the
      // key state this statement (and the one on file) must start from.
      const inForce = await this.keyState.current();
      const staleNow = inForce ? staleness(statement, inForce) : "the CA has no key";
      if (staleNow) throw new CoordinatorError("CONFLICT", staleNow);
      const stored = await this.db()
        .selectFrom("roster_changes")
        .select("statement")
        .where("to_digest", "=", statement.to)
        .executeTakeFirst();
      if (stored && stored.statement !== text) {
        // Another statement of the same change. Only one signed for an earlier key state (its
        // signatures can never count again) gives way; a current one keeps its signatures, or any
        // signer of a variant could wipe the others'.
        const old = RosterChangeStatementSchema.safeParse(JSON.parse(stored.statement) as unknown);
        if (old.success && staleness(old.data, inForce!) === null)
          throw new CoordinatorError(
            "CONFLICT",
            `a different statement of this change is on file (the same roster ${statement.to}, written differently): sign that one`,
          );
        await this.db().deleteFrom("roster_signatures").where("to_digest", "=", statement.to).execute();
        await this.db()
          .updateTable("roster_changes")
          .set({ statement: text, created_at: now })
          .where("to_digest", "=", statement.to)
          .execute();
      } else if (!stored) {
        await this.db()
          .insertInto("roster_changes")
          .values({ to_digest: statement.to, statement: text, created_at: now })
          .execute();
      }
      const had = await this.db()
        .selectFrom("roster_signatures")
        .select("signer")
        .where("to_digest", "=", statement.to)
        .where("signer", "=", signature.signer)
        .executeTakeFirst();
      if (had) return; // the same signer again: idempotent, the first signature stays
      await this.db()
        .insertInto("roster_signatures")
        .values({
          to_digest: statement.to,
          signer: signature.signer,
          signature: signature.signature,
          received_at: now,
        })
        .execute();
      // The statement and signature verify offline against the roster in force (docs/audit.md).
      await appendAudit(this.store, {
        kind: "lifecycle",
        subject: statement.to,
        body: { event: "roster-signature", statement, signature },
      });
      this.hooks.changed();
    });
    const entry = await this.entry(statement.to, ks);
    if (!entry) throw new CoordinatorError("INTERNAL", "the roster change just stored is gone");
    return entry;
  }

  /** `GET /api/v1/roster`: the key state in force and every change on file, newest first. */
  async view(): Promise<RosterView> {
    const ks = await this.keyState.current();
    const rows = await this.db()
      .selectFrom("roster_changes")
      .select("to_digest")
      .orderBy("created_at", "desc")
      .limit(100)
      .execute();
    const changes: RosterChangeEntry[] = [];
    for (const r of rows) {
      const e = ks ? await this.entry(r.to_digest, ks) : undefined;
      if (e) changes.push(e);
    }
    return { keyState: ks?.state ?? null, changes };
  }

  /** The change to `to` with its signatures, if one is on file. */
  async get(to: string): Promise<SignedRosterChange | undefined> {
    const row = await this.db()
      .selectFrom("roster_changes")
      .select("statement")
      .where("to_digest", "=", to)
      .executeTakeFirst();
    if (!row) return undefined;
    const statement = RosterChangeStatementSchema.parse(JSON.parse(row.statement) as unknown);
    const sigs = await this.db()
      .selectFrom("roster_signatures")
      .select(["signer", "signature"])
      .where("to_digest", "=", to)
      .orderBy("signer")
      .execute();
    return { statement, signatures: sigs.map((s) => ({ signer: s.signer, signature: s.signature })) };
  }

  private async entry(to: string, ks: KeyStateInForce): Promise<RosterChangeEntry | undefined> {
    const change = await this.get(to);
    if (!change) return undefined;
    const check = checkRosterChange(change, ks.state.roster, ks.caKeyId, ks.state.ceremonyId);
    return { change, validSigners: check.signers, approved: check.ok };
  }
}

/** Why a statement does not start from the key state in force, or null if it does. */
export function staleness(statement: RosterChangeStatement, ks: KeyStateInForce): string | null {
  if (statement.caKeyId !== ks.caKeyId)
    return `the change is for CA key ${statement.caKeyId}, this CA's key id is ${ks.caKeyId}`;
  if (statement.from !== ks.state.rosterDigest)
    return `the change starts from roster ${statement.from}, the roster in force is ${ks.state.rosterDigest}`;
  if (statement.basis !== ks.state.ceremonyId)
    return `the change was signed for the key state made by ${statement.basis}; the key state in force (epoch ${ks.state.epoch}) was made by ${ks.state.ceremonyId}`;
  return null;
}
