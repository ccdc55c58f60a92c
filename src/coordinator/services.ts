// Wires the coordinator's domain services over one store. Nothing here holds key material.
import { createHash } from "node:crypto";
import type { LoadedConfig } from "../config/load.ts";
import { CeremonyService, META_CA_CERT, META_CA_KEY } from "./ceremony.ts";
import { SigningService } from "./signing.ts";
import type { Store } from "./store/types.ts";
import { publicFromWire, PublicPackageWireSchema } from "../threshold/encoding.ts";
import { groupPublicKey } from "../threshold/dkg.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { RequestService } from "./requests/index.ts";
import { verifySigned } from "./verify-signed.ts";
import { CoordinatorHooks } from "./hooks.ts";
import type { CaMaterial } from "./ca-material.ts";
import { openEnvelope, rosterKeys } from "../protocol/envelope.ts";
import { CoordinatorError } from "./errors.ts";
import { RevocationService } from "./revocation.ts";
import { CheckpointService } from "./audit/checkpoints.ts";
import { ExchangeService } from "./exchange.ts";
import { Replica, REPLICA_REPORT_MS } from "./replica.ts";
import { clock } from "./clock.ts";
import { HEARTBEAT_FRESH_MS, HeartbeatBodySchema } from "../protocol/heartbeat.ts";
import { KeyStateReader, mismatchReason } from "./lifecycle/key-state.ts";
import { RosterChanges } from "./lifecycle/roster-changes.ts";
import { LifecycleService } from "./lifecycle/service.ts";

export interface CoordinatorServices {
  config: LoadedConfig;
  store: Store;
  ceremonies: CeremonyService;
  signing: SigningService;
  requests: RequestService;
  hooks: CoordinatorHooks;
  revocations: RevocationService;
  /** Checkpoints of the audit chain, threshold-signed (docs/audit.md). */
  checkpoints: CheckpointService;
  exchange: ExchangeService;
  /** The key state in force: epoch, roster, public package (docs/key-lifecycle.md). */
  keyState: KeyStateReader;
  /** Roster changes and the custodians' signatures on them. */
  roster: RosterChanges;
  /** Refresh, reshare and repair ceremonies. */
  lifecycle: LifecycleService;
  /** This process as one of the replicas on the database. */
  replica: Replica;
  caPublicKey(): Promise<Uint8Array | null>;
  caCertificate(): Promise<Uint8Array | null>;
  /** Readiness: `ok` once the CA key and root exist and the database answers (503 otherwise). */
  health(): Promise<{ ready: boolean; body: Record<string, unknown> }>;
  /**
   * A signed "I am online" from a custodian process: fresh within five minutes, bound to the CA
   * key id, and carrying a counter greater than the last one accepted from that process.
   */
  heartbeat(envelope: unknown): Promise<{ name: string }>;
}

export interface ServiceOptions {
  shareTimeoutMs?: number;
}

export function createServices(
  store: Store,
  config: LoadedConfig,
  opts: ServiceOptions = {},
): CoordinatorServices {
  // The CA key is read on every request and every exchange: parse and hash it once per value.
  let caKey: { raw: string; publicKey: Uint8Array; keyId: string } | undefined;
  const caKeyOf = async () => {
    const raw = await store.getMeta(META_CA_KEY);
    if (!raw) return undefined;
    if (caKey?.raw !== raw) {
      const publicKey = groupPublicKey(publicFromWire(PublicPackageWireSchema.parse(JSON.parse(raw))));
      caKey = { raw, publicKey, keyId: createHash("sha256").update(ed25519Spki(publicKey)).digest("hex") };
    }
    return caKey;
  };
  const caPublicKey = async (): Promise<Uint8Array | null> => (await caKeyOf())?.publicKey ?? null;
  const caKeyId = async (): Promise<string | null> => (await caKeyOf())?.keyId ?? null;
  const replica = new Replica(store);
  let lastHeartbeatPurge = 0;
  const hooks = new CoordinatorHooks(
    store,
    config.config.custodians.map((c) => c.name),
  );
  const keyState = new KeyStateReader(store, config);
  const signing = new SigningService(
    store,
    config,
    { shareTimeoutMs: opts.shareTimeoutMs ?? 15_000, caKeyId, keyState },
    hooks,
  );
  const ceremonies = new CeremonyService(store, config, signing, hooks);
  const roster = new RosterChanges(store, keyState, hooks);
  // A refresh or reshare completes: packages of the old epoch are never used again.
  const lifecycle = new LifecycleService(store, config, keyState, roster, hooks, (epoch) =>
    signing.onEpochChange(epoch),
  );
  const caCertificate = async (): Promise<Uint8Array | null> => {
    const b64 = await store.getMeta(META_CA_CERT);
    return b64 ? new Uint8Array(Buffer.from(b64, "base64")) : null;
  };
  const ca: CaMaterial = { certificate: caCertificate, keyId: caKeyId, publicKey: caPublicKey };
  const requests = new RequestService(
    store,
    config,
    signing,
    ca,
    hooks,
    async () => (await keyState.current())?.members ?? null,
  );
  signing.onComplete("leaf", (job, signature, failure) => requests.onLeafSigned(job, signature, failure));
  const revocations = new RevocationService(store, config, signing, ca, hooks);
  signing.onComplete("crl", (job, signature) => revocations.onCrlSigned(job, signature));
  const checkpoints = new CheckpointService(store, config, signing, ca);
  signing.onComplete("checkpoint", (job, signature) => checkpoints.onSigned(job, signature));

  // Invariant §3.8: assemble from the exact signed bytes, parse again and verify before release.
  signing.onComplete("root", async (job, signature, failure) => {
    if (!signature) return ceremonies.onRootSigned(job.subjectRef, null, failure);
    const root = verifySigned({
      kind: "certificate",
      tbs: job.tbs,
      signature,
      caPublicKey: await caPublicKey(),
    });
    if (!root.ok) return ceremonies.onRootSigned(job.subjectRef, null, `root: ${root.reason}`);
    await ceremonies.onRootSigned(job.subjectRef, root.der);
    await revocations.scheduleCrl(); // the first, empty CRL, so relying parties can check from day one
  });

  return {
    config,
    store,
    ceremonies,
    signing,
    requests,
    hooks,
    revocations,
    checkpoints,
    exchange: new ExchangeService(store, config, signing, requests, hooks),
    keyState,
    roster,
    lifecycle,
    replica,
    caPublicKey,
    caCertificate,
    heartbeat: async (envelope) => {
      let h;
      try {
        h = openEnvelope(envelope, rosterKeys(config.config.custodians), {
          type: "heartbeat",
          scope: "heartbeat",
          recipient: "coordinator",
          // Bound to this CA's key (null only while no key exists yet).
          caKeyId: await caKeyId(),
        });
      } catch (e) {
        throw new CoordinatorError("BAD_REQUEST", (e as Error).message);
      }
      const body = HeartbeatBodySchema.safeParse(h.body);
      if (!body.success)
        throw new CoordinatorError("BAD_REQUEST", `heartbeat from ${h.sender} has a malformed body`);
      const now = clock.now();
      if (Math.abs(Date.parse(h.issuedAt) - now) > HEARTBEAT_FRESH_MS)
        throw new CoordinatorError("BAD_REQUEST", "heartbeat is not fresh");
      // The counter must move forward for this process, on whichever replica saw the last one.
      if (!(await store.acceptHeartbeat(h.sender, body.data.instance, h.seq, new Date(now).toISOString())))
        throw new CoordinatorError(
          "CONFLICT",
          `heartbeat from ${h.sender} (instance ${body.data.instance}) is a replay: its counter ${h.seq} is not greater than the last one accepted`,
        );
      hooks.heard(h.sender, "heartbeat");
      // Counters older than the freshness window can go: their heartbeats are refused as stale.
      if (now - lastHeartbeatPurge > HEARTBEAT_FRESH_MS) {
        lastHeartbeatPurge = now;
        await store
          .purgeHeartbeats(new Date(now - 2 * HEARTBEAT_FRESH_MS).toISOString())
          .catch(() => undefined);
      }
      return { name: h.sender };
    },
    health: async () => {
      let database = "ok";
      try {
        await store.ping();
      } catch {
        database = "unavailable";
      }
      const up = database === "ok";
      const caKeyReady = up && (await caPublicKey().catch(() => null)) !== null;
      const rootReady = up && (await caCertificate().catch(() => null)) !== null;
      const now = clock.now();
      // Replicas heard from in the last hour: a killed one shows as not live until then.
      const since = new Date(now - 3_600_000).toISOString();
      const replicas = up ? await store.listReplicas(since).catch(() => []) : [];
      // After a reshare or repair this coordinator signs nothing until it restarts with the
      // ca-config the custodians signed (docs/key-lifecycle.md): not ready, and it says why.
      const ks = up && caKeyReady ? await keyState.current().catch(() => null) : null;
      const mismatch = ks ? mismatchReason(ks.state, keyState.configRosterDigest) : null;
      const status = !up
        ? "degraded"
        : mismatch
          ? "roster-mismatch"
          : caKeyReady && rootReady
            ? "ok"
            : "initializing";
      return {
        ready: status === "ok",
        body: {
          status,
          database,
          storage: { dialect: store.dialect }, // where, only in the logs: health is public
          caKey: caKeyReady ? "ready" : "none",
          caKeyId: caKeyReady ? await caKeyId() : null,
          root: rootReady ? "ready" : "none",
          keyEpoch: ks?.state.epoch ?? null,
          ...(mismatch ? { rosterMismatch: mismatch } : {}),
          replica: replica.id,
          replicas: replicas.map((r) => ({
            id: r.id,
            url: r.url,
            startedAt: r.startedAt,
            lastSeen: r.lastSeen,
            live: now - Date.parse(r.lastSeen) < 3 * REPLICA_REPORT_MS,
          })),
          custodians: up ? await hooks.contacts.report(now).catch(() => []) : [],
        },
      };
    },
  };
}
