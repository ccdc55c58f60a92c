// The coordinator's own TLS certificate in auto mode (`tca serve --tls auto`, docs/tls.md).
// Once the CA root exists, the coordinator makes a P-256 key and a CSR for its names and submits it
// through the normal intake as the requester named `coordinator` in ca-config: the custodians then
// review, approve and threshold-sign it exactly like any request (they re-derive the TBS and check
// it against that requester's grant in their own copy of ca-config), and anyone can see
// the request in the list as coming from `coordinator`. No token is involved: the coordinator calls
// its own intake. When the certificate is issued it is checked (it chains to the CA root, its key is
// ours, it is valid now), saved in the TLS directory (key mode 0600), and installed without a
// restart. It is renewed with a new key once two thirds of its lifetime have passed; a saved
// certificate is reused across restarts until then. Nothing here logs a key.
import "reflect-metadata";
import { X509Certificate, webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { basename, dirname, extname, join, resolve } from "node:path";
import * as x509 from "@peculiar/x509";
import type { Logger } from "pino";
import { z } from "zod";
import type { CaConfig, Requester } from "../config/schema.ts";
import type { RequestView } from "../protocol/approval.ts";
import { grantCovers } from "../x509/policy.ts";
import { toPem } from "../x509/der.ts";
import { checkKeyAndChain, type KeyAndChain, type LeafSummary } from "./http/tls.ts";
import type { Submission } from "./requests/intake.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** The ca-config requester the coordinator's own certificate requests come from. */
export const SELF_REQUESTER = "coordinator";
/** How often the loop looks: for the root, for its pending request, for renewal. */
export const SELF_TLS_TICK_MS = 1_000;
/** After a refused, rejected or failed request, wait this long before asking again. */
export const SELF_TLS_RETRY_MS = 60_000;

/** When a certificate valid from `notBefore` to `notAfter` is renewed: at two thirds of its lifetime. */
export function renewAt(notBefore: Date, notAfter: Date): number {
  return notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
}

/** `localhost`, `127.0.0.1`, `::1`, and the listen host when it names one address (not a wildcard). */
export function defaultTlsNames(host: string): string[] {
  const names = ["localhost", "127.0.0.1", "::1"];
  const h = host.replace(/^\[|\]$/g, "");
  if (h !== "" && h !== "0.0.0.0" && h !== "::" && !names.includes(h)) names.push(h);
  return names;
}

/**
 * The TLS directory beside a SQLite file (`tca.db` → `tca-tls`); with PostgreSQL (or an in-memory
 * database) `tca-tls` in the working directory — each replica needs its own.
 */
export function defaultTlsDir(database: string): string {
  if (/^postgres(ql)?:\/\//.test(database) || database === ":memory:") return resolve("tca-tls");
  const file = resolve(database.replace(/^sqlite:/, ""));
  return join(dirname(file), `${basename(file, extname(file))}-tls`);
}

/**
 * Checks that ca-config has the `coordinator` requester, granted `profile`, whose allowed names
 * cover `names`; returns it, or throws an Error saying what to add.
 */
export function selfRequester(config: CaConfig, profile: string, names: readonly string[]): Requester {
  const r = config.requesters.find((x) => x.name === SELF_REQUESTER);
  const hint =
    `--tls auto needs a requester named "${SELF_REQUESTER}" in ca-config granted the "${profile}" profile, ` +
    `with allowedNames covering ${names.join(", ")} (its tokenSha256 may be the hash of a token nobody keeps: ` +
    `the coordinator submits its own request without one; see docs/tls.md)`;
  if (!r) throw new Error(`${hint}; there is none`);
  if (!(profile in config.profiles)) throw new Error(`--tls-profile: ca-config has no profile "${profile}"`);
  if (!r.profiles.includes(profile)) throw new Error(`${hint}; it is not granted "${profile}"`);
  for (const n of names) {
    const type = isIP(n) ? "ip" : "dns";
    if (!r.allowedNames.some((p) => grantCovers(type, n, p)))
      throw new Error(`${hint}; its allowedNames do not cover ${n}`);
  }
  // Clients accept any certificate from this CA for the coordinator's names as the coordinator's:
  // unless the grant is exclusive, a requester whose grant also covers them could get one and
  // impersonate the coordinator. Loopback names (tca dev) are exempt: only this host reaches them.
  if (!r.exclusive) {
    const shared = names.filter(
      (n) =>
        !LOOPBACK.has(n) &&
        config.requesters.some(
          (o) => o.name !== r.name && o.allowedNames.some((p) => grantCovers(isIP(n) ? "ip" : "dns", n, p)),
        ),
    );
    if (shared.length > 0)
      throw new Error(
        `other requesters may ask for ${shared.join(", ")}, and could then pose as this coordinator: ` +
          `set "exclusive: true" on requester "${SELF_REQUESTER}" in ca-config (docs/tls.md)`,
      );
  }
  return r;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);

/** What the coordinator's request intake offers the loop (RequestService fits). */
export interface SelfTlsRequests {
  submit(s: Submission): Promise<RequestView>;
  view(id: string): Promise<RequestView>;
  certificateChain(id: string): Promise<string>;
}

export interface SelfTlsOptions {
  requests: SelfTlsRequests;
  caCertificate(): Promise<Uint8Array | null>;
  requester: Requester;
  profile: string;
  names: readonly string[];
  dir: string;
  log: Logger;
  /** Called with each certificate to serve (the saved one at start, each new one). */
  install(m: KeyAndChain): void;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

const PendingSchema = z.object({ id: z.string().min(1).max(100), keyPem: z.string().min(1) }).strict();
type Pending = z.infer<typeof PendingSchema>;

export class SelfTls {
  readonly #o: SelfTlsOptions;
  readonly #now: () => number;
  #current: (LeafSummary & { chainPem: string }) | undefined;
  #pending: Pending | undefined;
  #retryAfter = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #loaded = false;

  constructor(o: SelfTlsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** The certificate now served, if any. */
  get current(): LeafSummary | undefined {
    return this.#current;
  }
  /** The id of the request waiting for issuance, if any. */
  get pendingRequest(): string | undefined {
    return this.#pending?.id;
  }

  get #keyPath() {
    return join(this.#o.dir, "key.pem");
  }
  get #chainPath() {
    return join(this.#o.dir, "chain.pem");
  }
  get #pendingPath() {
    return join(this.#o.dir, "pending.json");
  }

  /** Starts the loop: a tick now, then one every SELF_TLS_TICK_MS. */
  start(): void {
    const loop = async () => {
      await this.tick();
      this.#timer = setTimeout(() => void loop(), SELF_TLS_TICK_MS);
      this.#timer.unref();
    };
    void loop();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One step: load what is saved, follow the pending request, or ask for a (new) certificate. */
  async tick(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await this.#step();
    } catch (e) {
      this.#retryAfter = this.#now() + SELF_TLS_RETRY_MS;
      this.#o.log.error(
        { err: (e as Error).message, retryInSeconds: SELF_TLS_RETRY_MS / 1000 },
        "TLS: the coordinator's certificate could not be obtained",
      );
    } finally {
      this.#running = false;
    }
  }

  async #step(): Promise<void> {
    const root = await this.#o.caCertificate();
    if (!root) return; // no CA yet: plain HTTP only until the ceremony has made the root
    if (!this.#loaded) {
      this.#loaded = true;
      this.#loadSaved(root);
    }
    if (this.#pending) return this.#follow(this.#pending, root);
    const now = this.#now();
    if (this.#current && now < renewAt(this.#current.notBefore, this.#current.notAfter)) return;
    if (now < this.#retryAfter) return;
    await this.#request();
  }

  /** The saved certificate, if it still chains to this CA's root and is valid; the saved pending request. */
  #loadSaved(root: Uint8Array): void {
    if (existsSync(this.#pendingPath)) {
      try {
        this.#pending = PendingSchema.parse(JSON.parse(readFileSync(this.#pendingPath, "utf8")));
      } catch (e) {
        this.#o.log.warn(
          { file: this.#pendingPath, err: (e as Error).message },
          "TLS: ignoring an unreadable pending request",
        );
      }
    }
    if (!existsSync(this.#chainPath) || !existsSync(this.#keyPath)) return;
    try {
      const m = {
        keyPem: readFileSync(this.#keyPath, "utf8"),
        chainPem: readFileSync(this.#chainPath, "utf8"),
      };
      const leaf = this.#check(m, root);
      this.#current = { ...leaf, chainPem: m.chainPem };
      this.#o.install(m);
      this.#o.log.info(
        { serial: leaf.serial, notAfter: leaf.notAfter.toISOString(), dir: this.#o.dir },
        "TLS: installed the saved certificate",
      );
    } catch (e) {
      this.#o.log.warn(
        { dir: this.#o.dir, err: (e as Error).message },
        "TLS: the saved certificate is not usable; asking for a new one",
      );
    }
  }

  /** Checks a chain and key: readable, matching, valid now, and the leaf signed by `root`. */
  #check(m: KeyAndChain, root: Uint8Array): LeafSummary {
    const leaf = checkKeyAndChain(m, { cert: this.#chainPath, key: this.#keyPath }, this.#now());
    const ca = new X509Certificate(Buffer.from(root));
    if (!new X509Certificate(m.chainPem).verify(ca.publicKey))
      throw new Error("the certificate was not issued by this CA's root");
    return leaf;
  }

  async #request(): Promise<void> {
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
    const names = this.#o.names;
    const cn = names.find((n) => !isIP(n)) ?? names[0]!;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${cn}`,
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension(
          names.map((value) => ({ type: isIP(value) ? ("ip" as const) : ("dns" as const), value })),
        ),
      ],
    });
    const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    const view = await this.#o.requests.submit({
      requester: this.#o.requester,
      profile: this.#o.profile,
      csr: csr.toString("pem"),
    });
    this.#pending = { id: view.id, keyPem: toPem(pkcs8, "PRIVATE KEY") };
    this.#save(this.#pendingPath, JSON.stringify(this.#pending) + "\n");
    this.#o.log.info(
      {
        request: view.id,
        requester: SELF_REQUESTER,
        profile: this.#o.profile,
        names,
        renewal: this.#current !== undefined,
      },
      "TLS: requested the coordinator's certificate (custodians approve and sign it like any request)",
    );
  }

  async #follow(p: Pending, root: Uint8Array): Promise<void> {
    let view: RequestView;
    try {
      view = await this.#o.requests.view(p.id);
    } catch (e) {
      this.#drop(`request ${p.id} cannot be read: ${(e as Error).message}`);
      return;
    }
    if (view.status === "rejected" || view.status === "failed") {
      this.#drop(`request ${p.id} was ${view.status}`);
      return;
    }
    if (view.status !== "issued") return;
    const m = { keyPem: p.keyPem, chainPem: await this.#o.requests.certificateChain(p.id) };
    const leaf = this.#check(m, root);
    this.#o.log.info(
      { request: p.id, serial: leaf.serial, notAfter: leaf.notAfter.toISOString() },
      "TLS: the coordinator's certificate was issued",
    );
    this.#save(this.#keyPath, m.keyPem);
    this.#save(this.#chainPath, m.chainPem);
    rmSync(this.#pendingPath, { force: true });
    this.#pending = undefined;
    const renewed = this.#current !== undefined;
    this.#current = { ...leaf, chainPem: m.chainPem };
    this.#o.install(m);
    this.#o.log.info(
      { serial: leaf.serial, renewAt: new Date(renewAt(leaf.notBefore, leaf.notAfter)).toISOString() },
      renewed ? "TLS: renewed certificate installed" : "TLS: certificate installed; serving HTTPS",
    );
  }

  #drop(why: string): void {
    this.#o.log.error({ retryInSeconds: SELF_TLS_RETRY_MS / 1000 }, `TLS: ${why}; will ask again`);
    this.#pending = undefined;
    rmSync(this.#pendingPath, { force: true });
    this.#retryAfter = this.#now() + SELF_TLS_RETRY_MS;
  }

  /** Writes a file atomically (temporary file, then rename), readable by this user only. */
  #save(path: string, text: string): void {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  }
}
