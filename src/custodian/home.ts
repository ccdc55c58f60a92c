// A custodian's data directory: public identity, encrypted keystore, its own ca-config copy, and the
// CA certificate once the ceremony is done.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { loadCaConfig, type LoadedConfig } from "../config/load.ts";
import { readKeystore, writeKeystore, type KeystoreContents, type WriteKeystoreOptions } from "./keystore.ts";
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
    await writeKeystore(this.keystorePath, passphrase, { identity: secrets }, opts);
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
