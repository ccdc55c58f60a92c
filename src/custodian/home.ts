// A custodian's data directory: public identity, encrypted keystore, its own ca-config copy, and the
// CA certificate once the ceremony is done.
import { storedSerial } from "../x509/serial.ts";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { loadCaConfig, type LoadedConfig } from "../config/load.ts";
import {
  keystoreFileVersion,
  readKeystore,
  readKeystoreAnchor,
  writeKeystore,
  writeKeystoreAnchor,
  type KeystoreContents,
  type WriteKeystoreOptions,
} from "./keystore.ts";
import { ed25519PublicKey } from "../common/ed25519.ts";
import { existsSync as fileExists, renameSync, truncateSync, writeFileSync as writeFile } from "node:fs";
import {
  GENESIS,
  Journal,
  JournalDamage,
  salvageJournal,
  signAnchor,
  verifiedAnchor,
  fsyncDir,
  type AnchorStore,
  type NewEntry,
} from "./journal.ts";

/** What the coordinator knows of this custodian's past work, for `tca custodian journal recover`. */
export interface CoordinatorRecords {
  /** Issued certificates: their serials must never be signed again. */
  issued(): Promise<{ id: string; serial: string; tbsSha256: string }[]>;
  /** The published CRL, accepted only if the CA key signed it. */
  crl(): Promise<{ number: bigint; serials: string[] } | undefined>;
}

export interface RecoveryResult {
  action: "intact" | "dropped-torn-tail" | "recovered";
  journal: string;
  entries: number;
  anchoredSeq: number;
  /** Where the damaged file or torn tail was moved. */
  movedTo?: string;
  lost?: number;
  carriedOver?: number;
  fromCoordinator?: number;
}
import { CustodianError } from "./errors.ts";
import { generateIdentity, publicIdentity, type PublicIdentity } from "../protocol/identity.ts";
import { PublicPackageWireSchema } from "../threshold/encoding.ts";
import { RosterSchema } from "../protocol/roster.ts";
import { parseBaseUrls } from "../protocol/http-client.ts";

export const KeyShareSchema = z
  .object({
    ceremonyId: z.string(),
    identifier: z.string(),
    signingShare: z.string().regex(/^[0-9a-f]{64}$/),
    publicPackage: PublicPackageWireSchema,
    caKeyId: z.string(),
    activatedAt: z.string(),
    /** Key epoch (docs/key-lifecycle.md): 0 from the DKG, +1 per refresh or reshare. Absent means 0. */
    epoch: z.number().int().min(0).optional(),
    /** The roster this share belongs to; absent on keystores from before the key lifecycle. */
    roster: RosterSchema.optional(),
  })
  .strict();
export type KeyShare = z.infer<typeof KeyShareSchema>;

/**
 * A new share made by a lifecycle ceremony, kept beside the old one until the coordinator reports
 * the ceremony complete (docs/key-lifecycle.md: old shares go only after every receiver confirmed).
 */
export const PendingShareSchema = z.object({ ceremonyId: z.string(), share: KeyShareSchema }).strict();
export type PendingShare = z.infer<typeof PendingShareSchema>;

export interface CustodianSecrets extends KeystoreContents {
  share?: KeyShare;
  pendingShare?: PendingShare;
  /**
   * Set (inside the encrypted part) once the journal's head has been anchored in this keystore: from
   * then on a keystore without an anchor is a rollback, not an old keystore (docs/journal.md).
   */
  journalAnchored?: boolean;
}

export class CustodianHome {
  constructor(readonly dir: string) {}

  get keystorePath() {
    return join(this.dir, "keystore.json");
  }
  get identityPath() {
    return join(this.dir, "identity.json");
  }
  get defaultConfigPath() {
    return join(this.dir, "ca-config.yaml");
  }
  get caCertPath() {
    return join(this.dir, "ca.pem");
  }
  get coordinatorUrlPath() {
    return join(this.dir, "coordinator.url");
  }
  get journalPath() {
    return join(this.dir, "journal.jsonl");
  }

  /** Where the journal's head is anchored: in clear, signed, in the keystore file. */
  anchorStore(): AnchorStore {
    const path = this.keystorePath;
    return {
      label: path,
      read: () => readKeystoreAnchor(path),
      write: (a) => writeKeystoreAnchor(path, a),
      version: () => keystoreFileVersion(path),
    };
  }

  /** The journal, checked against the anchor; needs no passphrase (`tca custodian journal verify`). */
  journal(): Journal {
    return new Journal(this.journalPath, Buffer.from(this.identity().signingKey, "base64url"), {
      anchor: this.anchorStore(),
    });
  }

  /**
   * The journal of an unlocked custodian, checked against the keystore's anchor. A keystore from
   * before anchoring gets an anchor of the journal as it is now (the journal's own chain and
   * signatures are still checked) and is marked, so that from then on a missing anchor is refused.
   */
  async openJournal(secrets: CustodianSecrets, passphrase: string): Promise<Journal> {
    const signingSecret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
    const journal = new Journal(this.journalPath, ed25519PublicKey(signingSecret), {
      anchor: this.anchorStore(),
      anchorRequired: secrets.journalAnchored === true,
    });
    if (secrets.journalAnchored !== true) {
      if (!journal.anchor()) journal.anchorNow(signingSecret);
      await this.save(passphrase, { ...secrets, journalAnchored: true });
    }
    return journal;
  }

  /**
   * The coordinators (replicas of one CA) this custodian talks to: `override`, else
   * $TCA_COORDINATOR, else the ones it took part in the ceremony with. Each may be a
   * comma-separated list.
   */
  coordinatorUrls(override?: string | readonly string[]): string[] {
    const env = process.env.TCA_COORDINATOR?.trim();
    const [where, source] =
      override !== undefined && override.length > 0
        ? ["--coordinator", override]
        : env
          ? ["$TCA_COORDINATOR", env]
          : existsSync(this.coordinatorUrlPath)
            ? [this.coordinatorUrlPath, readFileSync(this.coordinatorUrlPath, "utf8").trim()]
            : [undefined, undefined];
    if (!source)
      throw new CustodianError(
        "HOME_NOT_INITIALISED",
        "no coordinator known: pass --coordinator URL or set TCA_COORDINATOR",
      );
    try {
      return parseBaseUrls(source);
    } catch (e) {
      throw new CustodianError("HOME_NOT_INITIALISED", `coordinator from ${where}: ${(e as Error).message}`);
    }
  }

  /** coordinatorUrls as one comma-separated list (what CoordinatorClient takes). */
  coordinatorUrl(override?: string | readonly string[]): string {
    return this.coordinatorUrls(override).join(",");
  }

  async init(name: string, passphrase: string, opts?: WriteKeystoreOptions): Promise<PublicIdentity> {
    if (existsSync(this.keystorePath))
      throw new CustodianError(
        "HOME_EXISTS",
        `${this.dir} already holds a keystore; refusing to overwrite it`,
      );
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const secrets = generateIdentity(name);
    // Anchored from the start: an empty journal (docs/journal.md).
    const journalAnchor = signAnchor(Buffer.from(secrets.signingSecret, "base64url"), {
      seq: 0,
      head: GENESIS,
      counter: 0,
    });
    await writeKeystore(
      this.keystorePath,
      passphrase,
      { identity: secrets, journalAnchored: true },
      { ...opts, journalAnchor },
    );
    const pub = publicIdentity(secrets);
    writeFileSync(this.identityPath, JSON.stringify(pub, null, 2) + "\n", { mode: 0o644 });
    return pub;
  }

  identity(): PublicIdentity {
    if (!existsSync(this.identityPath))
      throw new CustodianError(
        "HOME_NOT_INITIALISED",
        `${this.dir} is not a custodian home: run tca custodian init first`,
      );
    return JSON.parse(readFileSync(this.identityPath, "utf8")) as PublicIdentity;
  }

  async open(passphrase: string): Promise<CustodianSecrets> {
    this.identity();
    const c = await readKeystore(this.keystorePath, passphrase);
    const share = c.share === undefined ? undefined : KeyShareSchema.parse(c.share);
    const pendingShare = c.pendingShare === undefined ? undefined : PendingShareSchema.parse(c.pendingShare);
    return { ...c, share, ...(pendingShare ? { pendingShare } : {}) };
  }

  /**
   * Re-encrypts the keystore with new contents at the scrypt cost it already has: a keystore made
   * with a higher cost than the default keeps it, and a dev CA's keystore (createLocalCa) keeps
   * its low one. A keystore whose cost cannot be read gets the default.
   */
  async save(passphrase: string, contents: CustodianSecrets): Promise<void> {
    // A running agent of this custodian may anchor its journal at any moment: the save holds the
    // journal's lock while it reads the anchor and replaces the file, so the anchor is never lost.
    await writeKeystore(this.keystorePath, passphrase, contents, {
      scryptN: this.storedScryptN(),
      ...(existsSync(dirname(this.journalPath)) ? { anchorLock: `${this.journalPath}.lock` } : {}),
    });
  }

  private storedScryptN(): number | undefined {
    try {
      const n = (JSON.parse(readFileSync(this.keystorePath, "utf8")) as { kdf?: { N?: unknown } }).kdf?.N;
      return typeof n === "number" ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `tca custodian journal recover` (docs/journal.md). An intact journal is only re-anchored. A torn
   * last line past the anchored head (it never left) is dropped with `dropTornTail`. Anything else
   * needs `acceptLoss`: the damaged file is moved aside and a new segment starts with a recovery
   * entry continuing the anchored numbering and saying how many entries were lost, followed by what
   * could be rebuilt: the damaged file's intact prefix, the serials of the certificates the
   * coordinator lists as issued and the published CRL (verified against the CA key). These only add
   * refusals (a serial or CRL number not to sign again), so a lying coordinator cannot widen what
   * this custodian signs; what it leaves out is the loss the person accepted.
   */
  async recoverJournal(
    passphrase: string,
    o: {
      dropTornTail?: boolean;
      acceptLoss?: boolean;
      records?: CoordinatorRecords;
      /** Found elsewhere (the coordinator's records): the journal is whole but was rolled back with its anchor. */
      rolledBack?: { message: string; lost: number };
    },
  ): Promise<RecoveryResult> {
    const secrets = await this.open(passphrase);
    const signingSecret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
    const pub = ed25519PublicKey(signingSecret);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const done = async (action: RecoveryResult["action"], extra: Partial<RecoveryResult> = {}) => {
      const j = await this.openJournal(secrets, passphrase);
      j.anchorNow(signingSecret);
      return { action, journal: this.journalPath, entries: j.entryCount, anchoredSeq: j.nextSeq, ...extra };
    };
    let damage: JournalDamage;
    if (o.rolledBack) damage = new JournalDamage(o.rolledBack.message);
    else
      try {
        return await done("intact");
      } catch (e) {
        if (!(e instanceof JournalDamage)) throw e;
        damage = e;
      }
    if (damage.tornTail && o.dropTornTail) {
      const movedTo = `${this.journalPath}.torn-${stamp}`;
      const text = readFileSync(this.journalPath);
      writeFile(movedTo, text.subarray(damage.tornTail.offset), { mode: 0o600 });
      truncateSync(this.journalPath, damage.tornTail.offset);
      return done("dropped-torn-tail", { movedTo });
    }
    if (!o.acceptLoss)
      throw new CustodianError(
        "REFUSED",
        `${damage.message}\n` +
          (damage.tornTail
            ? "Pass --drop-torn-tail to remove the interrupted last line (it never left this custodian)."
            : "This cannot be repaired from local data. Restore journal.jsonl from a backup that holds every " +
              "anchored entry, or pass --accept-loss to start a new journal segment that records the loss and " +
              "rebuilds what the coordinator's records allow (docs/journal.md)."),
      );
    const anchor = verifiedAnchor(this.anchorStore().read(), pub);
    const salvaged = salvageJournal(this.journalPath, pub);
    const from =
      anchor && anchor.seq >= salvaged.nextSeq
        ? { seq: anchor.seq, head: anchor.head }
        : { seq: salvaged.nextSeq, head: salvaged.head };
    const lost = Math.max(0, (anchor?.seq ?? 0) - salvaged.nextSeq) + (o.rolledBack?.lost ?? 0);
    const rebuilt: NewEntry[] = [...salvaged.entries];
    const known = new Set(salvaged.entries.filter((e) => e.kind === "signature").map((e) => e.serial));
    let fromCoordinator = 0;
    if (o.records) {
      for (const r of await o.records.issued()) {
        // Request views show serials without the sign octet; the journal keeps DER content octets.
        const serial = storedSerial(r.serial) ?? r.serial;
        if (known.has(serial)) continue;
        known.add(serial);
        rebuilt.push({
          kind: "signature",
          requestId: r.id,
          tbsSha256: r.tbsSha256,
          serial,
          jobId: "recovered",
        });
        fromCoordinator++;
      }
      const crl = await o.records.crl();
      if (crl) {
        rebuilt.push({
          kind: "crl",
          requestId: "recovered-crl",
          tbsSha256: GENESIS,
          crlNumber: crl.number.toString(),
          serials: crl.serials,
          jobId: "recovered",
        });
        fromCoordinator++;
      }
    }
    let movedTo: string | undefined;
    if (fileExists(this.journalPath)) {
      movedTo = `${this.journalPath}.damaged-${stamp}`;
      renameSync(this.journalPath, movedTo);
      fsyncDir(this.dir);
    }
    const note =
      `recovered at seq ${from.seq} after ${damage.message.split(";")[0]}: ${lost} entries lost; ` +
      `${salvaged.entries.length} carried over from the damaged file, ${fromCoordinator} rebuilt from coordinator records`;
    Journal.startRecoveredSegment(this.journalPath, pub, this.anchorStore(), signingSecret, {
      from,
      lost,
      note,
      rebuilt,
    });
    return done("recovered", {
      ...(movedTo ? { movedTo } : {}),
      lost,
      carriedOver: salvaged.entries.length,
      fromCoordinator,
    });
  }

  config(path?: string): LoadedConfig {
    return loadCaConfig(path ?? this.defaultConfigPath);
  }
}
