// A custodian's data directory: public identity, encrypted keystore, its own ca-config copy, and the
// CA certificate once the ceremony is done.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
import { GENESIS, Journal, signAnchor, type AnchorStore } from "./journal.ts";
import { CustodianError } from "./errors.ts";
import { generateIdentity, publicIdentity, type PublicIdentity } from "../protocol/identity.ts";
import { PublicPackageWireSchema } from "../threshold/encoding.ts";
import { parseBaseUrls } from "../protocol/http-client.ts";

export const KeyShareSchema = z
  .object({
    ceremonyId: z.string(),
    identifier: z.string(),
    signingShare: z.string().regex(/^[0-9a-f]{64}$/),
    publicPackage: PublicPackageWireSchema,
    caKeyId: z.string(),
    activatedAt: z.string(),
  })
  .strict();
export type KeyShare = z.infer<typeof KeyShareSchema>;

export interface CustodianSecrets extends KeystoreContents {
  share?: KeyShare;
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
    return { ...c, share };
  }

  /**
   * Re-encrypts the keystore with new contents at the scrypt cost it already has: a keystore made
   * with a higher cost than the default keeps it, and a dev CA's keystore (createLocalCa) keeps
   * its low one. A keystore whose cost cannot be read gets the default.
   */
  async save(passphrase: string, contents: CustodianSecrets): Promise<void> {
    await writeKeystore(this.keystorePath, passphrase, contents, { scryptN: this.storedScryptN() });
  }

  private storedScryptN(): number | undefined {
    try {
      const n = (JSON.parse(readFileSync(this.keystorePath, "utf8")) as { kdf?: { N?: unknown } }).kdf?.N;
      return typeof n === "number" ? n : undefined;
    } catch {
      return undefined;
    }
  }

  config(path?: string): LoadedConfig {
    return loadCaConfig(path ?? this.defaultConfigPath);
  }
}
