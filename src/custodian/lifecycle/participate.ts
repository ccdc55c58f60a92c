// `tca custodian ceremony`: take part in a refresh, reshare or repair, and make its outcome this
// custodian's own only once the ceremony is complete (docs/key-lifecycle.md "Running a ceremony").
//
// The new share is stored as *pending* beside the old one before this custodian confirms; the old
// share is replaced only when the coordinator reports that every receiver confirmed. A pending
// share left by a crash is settled the next time the custodian opens its keystore for signing
// (settlePendingShare). A dealer that is not in the new roster deletes its share at the end.
import { writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import type { LoadedConfig } from "../../config/load.ts";
import {
  LcConfirmBodySchema,
  LifecycleMessagesSchema,
  LifecycleViewSchema,
  RosterViewSchema,
  planSigningKeys,
  type LifecyclePlan,
} from "../../protocol/lifecycle.ts";
import { openEnvelope } from "../../protocol/envelope.ts";
import { canonicalJson } from "../../common/canonical-json.ts";
import { checkRosterChange, rosterDigest, rosterOf } from "../../protocol/roster.ts";
import { publicFromWire } from "../../threshold/encoding.ts";
import { groupPublicKey } from "../../threshold/dkg.ts";
import { publicPackageDigest } from "../../threshold/lifecycle.ts";
import { ed25519Spki } from "../../x509/tbs.ts";
import { verifyCertificateSignature } from "../../x509/assemble.ts";
import { fromPem, toPem } from "../../x509/der.ts";
import type { CoordinatorClient } from "../client.ts";
import { connectCustodian } from "../connect.ts";
import { CustodianError } from "../errors.ts";
import type { CustodianHome, CustodianSecrets, KeyShare } from "../home.ts";
import { LifecycleRunner, type LifecycleTamper } from "./runner.ts";

export interface LifecycleParticipation {
  home: CustodianHome;
  passphrase: string;
  coordinatorUrl: string;
  config: LoadedConfig;
  ceremony?: string;
  progress?: (line: string) => void;
  timeoutMs?: number;
  tamper?: LifecycleTamper;
}

export interface LifecycleOutcome {
  ceremonyId: string;
  kind: LifecyclePlan["kind"];
  /** What this custodian holds now. */
  result: "new-share" | "share-kept" | "share-deleted";
  epoch: number;
  threshold: number;
  custodians: number;
}

export async function takePartInLifecycle(o: LifecycleParticipation): Promise<LifecycleOutcome> {
  const say = o.progress ?? (() => undefined);
  const timeoutMs = o.timeoutMs ?? 300_000;
  let secrets = await o.home.open(o.passphrase);
  const signer = {
    name: secrets.identity.name,
    signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
  };
  const client = connectCustodian({ urls: o.coordinatorUrl, identity: signer, home: o.home });
  if (secrets.pendingShare) secrets = await settlePendingShare(o.home, o.passphrase, client, secrets, say);
  const runner = new LifecycleRunner({
    client,
    signer,
    signingKey: o.home.identity().signingKey,
    config: o.config,
    share: secrets.share,
    ceremony: o.ceremony ?? "current",
    progress: say,
    timeoutMs,
    ...(o.tamper ? { tamper: o.tamper } : {}),
    beforeConfirm: async (share, plan) => {
      const cur = await o.home.open(o.passphrase);
      await o.home.save(o.passphrase, { ...cur, pendingShare: { ceremonyId: plan.ceremonyId, share } });
    },
  });
  let run: Awaited<ReturnType<LifecycleRunner["run"]>>;
  try {
    run = await runner.run();
  } catch (e) {
    // A failed ceremony leaves every old share working: drop a pending share it may have left.
    await dropPendingIfFailed(o.home, o.passphrase, client);
    throw e;
  }
  // run() returns only once every receiver's signed confirmation of the package this custodian
  // computed has been checked: that is the ceremony's outcome, whatever the coordinator says.
  const plan = run.plan;
  const cur = await o.home.open(o.passphrase);
  const common = {
    ceremonyId: plan.ceremonyId,
    kind: plan.kind,
    epoch: plan.toEpoch,
    threshold: plan.newRoster.threshold,
    custodians: plan.newRoster.custodians.length,
  };
  if (run.share) {
    const hadShare = cur.share !== undefined;
    await o.home.save(o.passphrase, promote(cur, run.share));
    say(
      `ceremony complete: my new share (epoch ${plan.toEpoch}) is active${hadShare ? "; the old one is deleted" : ""}`,
    );
    // A new member of a reshare, or a repaired custodian, starts from a new home.
    if (!hadShare) await saveCaCertificate(o.home, client, o.coordinatorUrl, run.share, say);
    return { ...common, result: "new-share" };
  }
  if (!plan.newRoster.custodians.some((c) => c.name === signer.name)) {
    await o.home.save(o.passphrase, { ...withoutPending(cur), share: undefined });
    say("ceremony complete: I am not in the new roster; my share is deleted from this keystore");
    return { ...common, result: "share-deleted" };
  }
  // A repair's helper: same share, new roster (the lost custodian's new keys).
  if (cur.share) await o.home.save(o.passphrase, { ...cur, share: { ...cur.share, roster: plan.newRoster } });
  say("ceremony complete: my share is unchanged");
  return { ...common, result: "share-kept" };
}

function withoutPending(s: CustodianSecrets): CustodianSecrets {
  const { pendingShare: _dropped, ...rest } = s;
  void _dropped;
  return rest;
}

function promote(s: CustodianSecrets, share: KeyShare): CustodianSecrets {
  return { ...withoutPending(s), share: { ...share, activatedAt: new Date().toISOString() } };
}

async function dropPendingIfFailed(home: CustodianHome, passphrase: string, client: CoordinatorClient) {
  const cur = await home.open(passphrase).catch(() => undefined);
  if (!cur?.pendingShare) return;
  const v = await client
    .get(`/api/v1/lifecycle/${cur.pendingShare.ceremonyId}`, LifecycleViewSchema)
    .catch(() => undefined);
  // Only a ceremony known to have failed drops it: one that may still complete keeps it, and the
  // next start settles it.
  if (v?.status === "failed") await home.save(passphrase, withoutPending(cur));
}

/**
 * A pending share from a ceremony this custodian took part in: promoted if the ceremony completed,
 * dropped if it failed, kept (with the old share still in use) while it runs or the coordinator
 * cannot be asked. Returns the secrets as they are now.
 */
export async function settlePendingShare(
  home: CustodianHome,
  passphrase: string,
  client: CoordinatorClient,
  secrets: CustodianSecrets,
  say: (line: string) => void,
): Promise<CustodianSecrets> {
  const pending = secrets.pendingShare;
  if (!pending) return secrets;
  let v;
  try {
    v = await client.get(`/api/v1/lifecycle/${pending.ceremonyId}`, LifecycleViewSchema);
  } catch (e) {
    say(
      `cannot ask about ceremony ${pending.ceremonyId} (${(e as Error).message}); keeping the current share`,
    );
    return secrets;
  }
  if (await allConfirmed(client, v.plan, pending.share)) {
    const next = promote(secrets, pending.share);
    await home.save(passphrase, next);
    say(
      `ceremony ${pending.ceremonyId} completed while I was away: my new share (epoch ${pending.share.epoch ?? 0}) is active`,
    );
    return next;
  }
  if (v.status === "failed") {
    const next = withoutPending(secrets);
    await home.save(passphrase, next);
    say(`ceremony ${pending.ceremonyId} failed: its pending share is dropped; the current share stays`);
    return next;
  }
  return secrets;
}

/**
 * Whether every receiver of `plan` has confirmed exactly the package of `share`, each confirmation
 * checked against the receiver's identity key: the ceremony's outcome, not the coordinator's word.
 */
async function allConfirmed(
  client: CoordinatorClient,
  plan: LifecyclePlan,
  share: KeyShare,
): Promise<boolean> {
  const res = await client.get(
    `/api/v1/lifecycle/${plan.ceremonyId}/messages?type=lc%2Fconfirm`,
    LifecycleMessagesSchema,
  );
  const keys = planSigningKeys(plan);
  const digest = publicPackageDigest(publicFromWire(share.publicPackage));
  const wire = canonicalJson(share.publicPackage);
  const confirmed = new Set<string>();
  for (const m of res.messages) {
    try {
      const h = openEnvelope(m, keys, { type: "lc/confirm", scope: plan.ceremonyId, caKeyId: plan.caKeyId });
      const b = LcConfirmBodySchema.parse(h.body);
      if (b.publicPackageDigest === digest && canonicalJson(b.publicPackage) === wire)
        confirmed.add(h.sender);
    } catch {
      // Not a confirmation of this package by a participant: it does not count.
    }
  }
  return plan.receivers.every((r) => confirmed.has(r));
}

/**
 * A custodian whose ca-config names another roster than its share belongs to (after a repair it
 * did not take part in, say) adopts the new roster only if the coordinator's key state is that
 * roster and a change to it, signed by t custodians of the share's roster, is on file; its share
 * must still be the one in force. Otherwise it refuses to sign (docs/key-lifecycle.md "Roster
 * changes"). Returns the secrets as they are now.
 */
export async function adoptRoster(
  home: CustodianHome,
  passphrase: string,
  client: CoordinatorClient,
  config: LoadedConfig,
  secrets: CustodianSecrets,
  say: (line: string) => void,
): Promise<CustodianSecrets> {
  const share = secrets.share;
  const mine = rosterOf(config.config);
  if (share && !share.roster) {
    // A share from before the key lifecycle: it belongs to the roster of the ca-config this
    // custodian has signed with so far, which from now on it checks plans and changes against.
    const next: CustodianSecrets = { ...secrets, share: { ...share, roster: mine } };
    await home.save(passphrase, next);
    return next;
  }
  if (!share?.roster) return secrets;
  const to = rosterDigest(mine);
  const from = rosterDigest(share.roster);
  if (to === from) return secrets;
  const refuse = (why: string) =>
    new CustodianError(
      "ANNOUNCEMENT_MISMATCH",
      `this ca-config's roster is not the one my key share belongs to, and ${why}: run with the ca-config the custodians signed`,
    );
  const view = await client.get("/api/v1/roster", RosterViewSchema);
  const ks = view.keyState;
  if (!ks || ks.rosterDigest !== to) throw refuse("it is not the roster in force at the coordinator");
  if (
    (share.epoch ?? 0) !== ks.epoch ||
    publicPackageDigest(publicFromWire(share.publicPackage)) !== ks.publicPackageDigest
  )
    throw refuse(`my share (epoch ${share.epoch ?? 0}) is no longer the one in force (epoch ${ks.epoch})`);
  const change = view.changes.find((c) => c.change.statement.from === from && c.change.statement.to === to);
  if (!change) throw refuse("no change to it from my share's roster is on file");
  const check = checkRosterChange(change.change, share.roster, share.caKeyId);
  if (!check.ok) throw refuse(`the change to it is not approved: ${check.reason}`);
  const next: CustodianSecrets = { ...secrets, share: { ...share, roster: mine } };
  await home.save(passphrase, next);
  say(`adopted the new roster, signed by ${check.signers.join(", ")}`);
  return next;
}

/** A repaired custodian's new home: the CA certificate (checked against the group key) and the coordinator URL. */
async function saveCaCertificate(
  home: CustodianHome,
  client: CoordinatorClient,
  coordinatorUrl: string,
  share: KeyShare,
  say: (line: string) => void,
): Promise<void> {
  const caPublicKey = groupPublicKey(publicFromWire(share.publicPackage));
  const der = fromPem(await client.text("/ca.pem"), ["CERTIFICATE"]);
  const x = new X509Certificate(Buffer.from(der));
  const spki = Buffer.from(x.publicKey.export({ format: "der", type: "spki" }));
  if (!spki.equals(Buffer.from(ed25519Spki(caPublicKey))))
    throw new CustodianError(
      "CEREMONY_FAILED",
      "the coordinator's CA certificate carries another public key",
    );
  // A self-signed root must be signed by the group key; a certificate under an external root is
  // checked against its chain when the custodian adopts it (docs/intermediate.md).
  if (x.issuer === x.subject && !verifyCertificateSignature(der, caPublicKey))
    throw new CustodianError("CEREMONY_FAILED", "the coordinator's root is not signed by the group key");
  writeFileSync(home.caCertPath, toPem(der, "CERTIFICATE"));
  writeFileSync(home.coordinatorUrlPath, coordinatorUrl + "\n");
  say(`CA certificate saved to ${home.caCertPath}`);
}
