// The key state in force (docs/key-lifecycle.md, "Epochs"): which shares sign (epoch), under which
// roster, with which public key package. Kept in META "ca.keyState", written by the ceremony that
// made it: the DKG (epoch 0 under the roster it ran with) or a lifecycle ceremony. A CA whose DKG
// ran before the key lifecycle existed has none: its state is the DKG's, epoch 0 under the
// ca-config's roster, and is derived (never written) until the first lifecycle ceremony completes.
//
// Read on hot paths (every offer, every package formed): one query for both META rows, and the
// parsing and hashing done once per stored value.
import type { LoadedConfig } from "../../config/load.ts";
import { KeyStateSchema, type KeyState } from "../../protocol/lifecycle.ts";
import { rosterDigest, rosterOf, type Roster } from "../../protocol/roster.ts";
import { publicFromWire, PublicPackageWireSchema } from "../../threshold/encoding.ts";
import { publicPackageDigest } from "../../threshold/lifecycle.ts";
import type { FrostPublic } from "../../threshold/suite.ts";
import { groupPublicKey } from "../../threshold/dkg.ts";
import type { Store } from "../store/types.ts";
import { caKeyIdOf } from "../ceremony.ts";
import type { LifecycleDatabase } from "./tables.ts";

export const META_KEY_STATE = "ca.keyState";
export const META_PUBLIC_PACKAGE = "ca.publicKeyPackage";

/** The key state with what the coordinator derives from it, parsed once per stored value. */
export interface KeyStateInForce {
  state: KeyState;
  /** The public key package in force (META "ca.publicKeyPackage"). */
  publicPackage: FrostPublic;
  /** The stored package, verbatim. */
  publicPackageRaw: string;
  /** SHA-256 of the CA key's SubjectPublicKeyInfo (docs/architecture.md §3.3). */
  caKeyId: string;
  /** Names of the roster in force. */
  members: ReadonlySet<string>;
  /** Whether the state is stored (false: derived for a CA from before the key lifecycle). */
  stored: boolean;
}

export class KeyStateReader {
  readonly #store: Store;
  /** The roster this coordinator's ca-config declares, and its digest. */
  readonly configRoster: Roster;
  readonly configRosterDigest: string;
  #cache: { key: string; value: KeyStateInForce } | undefined;

  constructor(store: Store, config: LoadedConfig) {
    this.#store = store;
    this.configRoster = rosterOf(config.config);
    this.configRosterDigest = rosterDigest(this.configRoster);
  }

  /** The key state in force, or null while the CA has no key. */
  async current(): Promise<KeyStateInForce | null> {
    const rows = await this.#store
      .queryBuilder<LifecycleDatabase>()
      .selectFrom("meta")
      .select(["key", "value"])
      .where("key", "in", [META_KEY_STATE, META_PUBLIC_PACKAGE])
      .execute();
    const pkg = rows.find((r) => r.key === META_PUBLIC_PACKAGE)?.value;
    if (pkg === undefined) return null;
    const stored = rows.find((r) => r.key === META_KEY_STATE)?.value;
    const key = `${stored ?? ""}\n${pkg}`;
    if (this.#cache?.key === key) return this.#cache.value;
    const publicPackage = publicFromWire(PublicPackageWireSchema.parse(JSON.parse(pkg)));
    const state =
      stored !== undefined ? KeyStateSchema.parse(JSON.parse(stored)) : await this.#derived(publicPackage);
    const value: KeyStateInForce = {
      state,
      publicPackage,
      publicPackageRaw: pkg,
      caKeyId: caKeyIdOf(groupPublicKey(publicPackage)),
      members: new Set(state.roster.custodians.map((c) => c.name)),
      stored: stored !== undefined,
    };
    this.#cache = { key, value };
    return value;
  }

  /** The epoch in force: 0 before any refresh or reshare (and while the CA has no key). */
  async epoch(): Promise<number> {
    return (await this.current())?.state.epoch ?? 0;
  }

  /**
   * Why this coordinator must not sign, or null: its ca-config's roster is not the roster in force
   * (after a reshare or repair, until it restarts with the ca-config the custodians signed).
   */
  async mismatch(): Promise<string | null> {
    const ks = await this.current();
    return ks ? mismatchReason(ks.state, this.configRosterDigest) : null;
  }

  /** A CA from before the key lifecycle: the DKG's state, epoch 0 under the ca-config's roster. */
  async #derived(pub: FrostPublic): Promise<KeyState> {
    const dkg = await this.#store
      .queryBuilder<LifecycleDatabase>()
      .selectFrom("ceremonies")
      .select(["id", "status", "updated_at"])
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
    // The ceremony that made the key: the complete one (a later failed one cannot exist while a key
    // does, but the newest complete one is the right answer either way).
    const made = dkg.find((c) => c.status === "complete") ?? dkg.find((c) => c.status !== "failed");
    return {
      epoch: 0,
      roster: this.configRoster,
      rosterDigest: this.configRosterDigest,
      publicPackageDigest: publicPackageDigest(pub),
      ceremonyId: made?.id ?? "dkg",
      since: made?.updated_at ?? new Date(0).toISOString(),
    };
  }
}

export function mismatchReason(state: KeyState, configDigest: string): string | null {
  if (state.rosterDigest === configDigest) return null;
  return `ca-config's roster is not the roster in force (digest ${state.rosterDigest}, epoch ${state.epoch}); restart with the ca-config the custodians signed`;
}
