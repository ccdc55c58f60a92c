// `tca ceremony sign-roster`: a custodian of the roster in force signs a new roster (docs/key-lifecycle.md
// "Roster changes"). The statement is built here from what this custodian knows itself — its key
// share (CA key id, the public package and roster it belongs to) and the new ca-config it was handed —
// and from the coordinator only the id of the ceremony that made the key state in force (`basis`),
// after checking that this key state is the one its own share belongs to. So a coordinator cannot get
// a signature on a roster the person did not see, nor for a key state this custodian does not hold.
import { z } from "zod";
import type { LoadedConfig } from "../../config/load.ts";
import { RosterViewSchema, type KeyState } from "../../protocol/lifecycle.ts";
import {
  rosterDiff,
  rosterDigest,
  rosterOf,
  signRosterChange,
  type Roster,
  type RosterChangeStatement,
  type RosterSignature,
} from "../../protocol/roster.ts";
import { groupPublicKey } from "../../threshold/dkg.ts";
import { publicFromWire } from "../../threshold/encoding.ts";
import { publicPackageDigest } from "../../threshold/lifecycle.ts";
import { caKeyIdFor } from "../ceremony.ts";
import { connectCustodian } from "../connect.ts";
import { CustodianError } from "../errors.ts";
import type { CustodianHome, KeyShare } from "../home.ts";

/** What the coordinator answers to a signature: the change with every signature collected so far. */
const SubmitAnswerSchema = z
  .object({
    validSigners: z.array(z.string()),
    approved: z.boolean(),
  })
  .passthrough();

export interface SignRosterOptions {
  home: CustodianHome;
  passphrase: string;
  /** The new ca-config: only its roster (threshold, names, identity keys) is signed. */
  newConfig: LoadedConfig;
  coordinatorUrl: string;
  /**
   * Shown the roster diff and the statement; true to sign. Called only after every check passed.
   * The CLI asks y/N on a terminal (or takes --yes).
   */
  confirm: (diff: string[], statement: RosterChangeStatement) => Promise<boolean>;
  progress?: (line: string) => void;
}

export interface SignRosterOutcome {
  statement: RosterChangeStatement;
  signature: RosterSignature;
  /** Members of the roster in force whose signatures the coordinator holds for this change. */
  validSigners: string[];
  /** How many it needs (the threshold of the roster in force). */
  needed: number;
  approved: boolean;
}

/**
 * The roster this custodian's share belongs to: recorded with the share (keystores written by a
 * lifecycle ceremony), else — a share from the DKG, whose roster is the ca-config it ran with — the
 * roster of the home's own ca-config.
 */
export function shareRoster(share: KeyShare, home: CustodianHome): Roster {
  return share.roster ?? rosterOf(home.config().config);
}

/** The checks before signing; a reason to refuse, or undefined. Exported for tests. */
export function refusalReason(o: {
  me: string;
  share: KeyShare;
  current: Roster;
  keyState: KeyState | null;
  next: Roster;
}): string | undefined {
  const { keyState, share } = o;
  if (!keyState) return "the coordinator has no key state (no CA key yet): nothing to change";
  if (rosterDigest(keyState.roster) !== rosterDigest(o.current))
    return "the coordinator's roster in force is not the roster this custodian's key share belongs to (its ca-config or keystore is out of date, or the coordinator's is)";
  const pub = publicFromWire(share.publicPackage);
  // The statement names the CA by the share's caKeyId: it must be the key the share's package holds.
  if (caKeyIdFor(groupPublicKey(pub)) !== share.caKeyId)
    return "this custodian's keystore is inconsistent: its CA key id is not its public package's key";
  const mine = publicPackageDigest(pub);
  if (keyState.publicPackageDigest !== mine)
    return `the coordinator's key state (epoch ${keyState.epoch}) is not the one this custodian's key share belongs to: refresh or repair this custodian first`;
  const epoch = share.epoch ?? 0;
  if (epoch !== keyState.epoch)
    return `this custodian's share is of epoch ${epoch}, the coordinator's key state of epoch ${keyState.epoch}`;
  if (!o.current.custodians.some((c) => c.name === o.me))
    return `${o.me} is not a custodian of the roster in force, so its signature would not count`;
  if (rosterDigest(o.next) === rosterDigest(o.current))
    return "the new ca-config has the same roster as the one in force: nothing to sign";
  return undefined;
}

export async function signRoster(o: SignRosterOptions): Promise<SignRosterOutcome> {
  const say = o.progress ?? (() => undefined);
  const secrets = await o.home.open(o.passphrase);
  const signingSecret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
  try {
    const share = secrets.share;
    if (!share)
      throw new CustodianError(
        "NO_KEY_SHARE",
        "this custodian holds no key share: only custodians of the roster in force sign a roster change",
      );
    const me = secrets.identity.name;
    const current = shareRoster(share, o.home);
    const next = rosterOf(o.newConfig.config);
    const client = connectCustodian({
      urls: o.coordinatorUrl,
      home: o.home,
      identity: { name: me, signingSecret },
    });
    const view = await client.get("/api/v1/roster", RosterViewSchema);
    const refusal = refusalReason({ me, share, current, keyState: view.keyState, next });
    if (refusal) throw new CustodianError("REFUSED", `will not sign the new roster: ${refusal}`);
    const keyState = view.keyState!;
    const statement: RosterChangeStatement = {
      caKeyId: share.caKeyId,
      from: rosterDigest(current),
      to: rosterDigest(next),
      roster: next,
      basis: keyState.ceremonyId,
    };
    say(`roster in force: ${current.threshold}-of-${current.custodians.length}, epoch ${keyState.epoch}`);
    if (!(await o.confirm(rosterDiff(current, next), statement)))
      throw new CustodianError("REFUSED", "the new roster was not signed");
    const signature = signRosterChange({ name: me, signingSecret }, statement);
    const answer = await client.post(
      "/api/v1/roster/signatures",
      { statement, signature },
      SubmitAnswerSchema,
    );
    return {
      statement,
      signature,
      validSigners: answer.validSigners,
      needed: current.threshold,
      approved: answer.approved,
    };
  } finally {
    signingSecret.fill(0);
  }
}
