// A certificate the coordinator asks the CA for itself: its TLS certificate (self-tls.ts, docs/tls.md)
// and its delegated OCSP responder certificate (ocsp/signer-cert.ts, docs/ocsp.md). Once the CA root
// exists, the coordinator makes a P-256 key and a CSR and submits it through the normal intake as a
// requester of ca-config (`coordinator`, `ocsp`): the custodians then review, approve and
// threshold-sign it exactly like any request (they re-derive the TBS and check it against that
// requester's grant in their own copy of ca-config), and anyone can see the request in the list as
// coming from that requester. No token is involved: the coordinator calls its own intake. When the
// certificate is issued it is checked (it chains to the CA root, its key is ours, it is valid now,
// and whatever the user adds), saved in its directory (key mode 0600), and installed without a
// restart. It is renewed with a new key once two thirds of its lifetime have passed; a saved
// certificate is reused across restarts until then. Nothing here logs a key.
import "reflect-metadata";
import { X509Certificate, webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import * as x509 from "@peculiar/x509";
import type { Logger } from "pino";
import { z } from "zod";
import type { Requester } from "../config/schema.ts";
import type { RequestView } from "../protocol/approval.ts";
import { toPem } from "../x509/der.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";
import { checkKeyAndChain, type KeyAndChain, type LeafSummary } from "./http/tls.ts";
import type { Submission } from "./requests/intake.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** How often the loop looks: for the root, for its pending request, for renewal. */
export const SELF_CERT_TICK_MS = 1_000;
/**
 * After a refused, rejected or failed request, wait this long before asking again; doubled after
 * each further failure in a row, up to SELF_CERT_MAX_RETRY_MS, so custodians who reject the request
 * are not asked again every minute. An installed certificate resets it.
 */
export const SELF_CERT_RETRY_MS = 60_000;
/** The longest wait between two attempts after failures in a row: an hour. */
export const SELF_CERT_MAX_RETRY_MS = 3_600_000;

/**
 * Whether the first certificate of `chainPem` names `ca` as its issuer: subject and, when both are
 * present, its authorityKeyIdentifier against the CA certificate's subjectKeyIdentifier (RFC 5280
 * §4.2.1.1; node:crypto's checkIssued, openssl's X509_check_issued).
 */
export function issuedUnder(chainPem: string, ca: Uint8Array): boolean {
  try {
    return new X509Certificate(chainPem).checkIssued(new X509Certificate(Buffer.from(ca)));
  } catch {
    return false;
  }
}

/** When a certificate valid from `notBefore` to `notAfter` is renewed: at two thirds of its lifetime. */
export function renewAt(notBefore: Date, notAfter: Date): number {
  return notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
}

/**
 * A directory for one kind of the coordinator's own key beside a SQLite file (`tca.db`, "tls" →
 * `tca-tls`); with PostgreSQL (or an in-memory database) `tca-<kind>` in the working directory —
 * each replica needs its own.
 */
export function defaultDirBeside(database: string, kind: string): string {
  if (/^postgres(ql)?:\/\//.test(database) || database === ":memory:") return resolve(`tca-${kind}`);
  const file = resolve(database.replace(/^sqlite:/, ""));
  return join(dirname(file), `${basename(file, extname(file))}-${kind}`);
}

/** What the coordinator's request intake offers the loop (RequestService fits). */
export interface SelfCertRequests {
  submit(s: Submission): Promise<RequestView>;
  view(id: string): Promise<RequestView>;
  certificateChain(id: string): Promise<string>;
}

/** An installed certificate: its PEM chain and key, the leaf's summary and DER. */
export interface InstalledCertificate extends KeyAndChain, LeafSummary {
  der: Uint8Array;
}

export interface SelfCertOptions {
  /** The log prefix ("TLS", "OCSP"). */
  label: string;
  /** What the certificate is, for log lines ("the coordinator's certificate"). */
  what: string;
  requests: SelfCertRequests;
  caCertificate(): Promise<Uint8Array | null>;
  requester: Requester;
  profile: string;
  /** The CSR's subject (RFC 4514) and subjectAltNames. */
  subject: string;
  sans?: readonly { type: "dns" | "ip"; value: string }[];
  dir: string;
  log: Logger;
  /** Further checks of an issued certificate (throws why it is not usable). */
  check?(leaf: X509Certificate): void;
  /** Called with each certificate to use (the saved one at start, each new one). */
  install(m: InstalledCertificate): void;
  /**
   * Whether this CA has revoked the certificate with this serial (DER content octets, lowercase
   * hex), by its own record; asked each tick about the installed certificate.
   */
  revoked?(serial: string): Promise<boolean>;
  /** Stop using the installed certificate (it was revoked) until `install` gives another. */
  withdraw?(): void;
  /** Log line once a certificate is installed (`renewed` says whether one was installed before). */
  installed?(renewed: boolean): string;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

const PendingSchema = z.object({ id: z.string().min(1).max(100), keyPem: z.string().min(1) }).strict();
type Pending = z.infer<typeof PendingSchema>;

export class SelfCertificate {
  readonly #o: SelfCertOptions;
  readonly #now: () => number;
  #current: (LeafSummary & { chainPem: string }) | undefined;
  #pending: Pending | undefined;
  #retryAfter = 0;
  /** The wait after the next failure (SELF_CERT_RETRY_MS doubling up to SELF_CERT_MAX_RETRY_MS). */
  #backoffMs = SELF_CERT_RETRY_MS;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #loaded = false;

  constructor(o: SelfCertOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** The certificate now installed, if any. */
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

  /** Starts the loop: a tick now, then one every SELF_CERT_TICK_MS. */
  start(): void {
    const loop = async () => {
      await this.tick();
      this.#timer = setTimeout(() => void loop(), SELF_CERT_TICK_MS);
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
      const wait = this.#backOff();
      this.#o.log.error(
        { err: (e as Error).message, retryInSeconds: wait / 1000 },
        `${this.#o.label}: ${this.#o.what} could not be obtained`,
      );
    } finally {
      this.#running = false;
    }
  }

  async #step(): Promise<void> {
    const root = await this.#o.caCertificate();
    if (!root) return; // no CA yet: nothing to ask for until the ceremony has made the root
    if (!this.#loaded) {
      this.#loaded = true;
      this.#loadSaved(root);
    }
    await this.#checkRevoked();
    if (this.#pending) return this.#follow(this.#pending, root);
    const now = this.#now();
    // A new CA certificate (intermediate mode, docs/intermediate.md) has the same key but another
    // key identifier: the installed certificate's AKI no longer names it, so clients that trust only
    // the new chain cannot build a path to it. Asked for again at once, not at renewal time.
    const caChanged = this.#current !== undefined && !issuedUnder(this.#current.chainPem, root);
    if (this.#current && !caChanged && now < renewAt(this.#current.notBefore, this.#current.notAfter)) return;
    if (now < this.#retryAfter) return;
    if (caChanged)
      this.#o.log.info(
        { serial: this.#current!.serial },
        `${this.#o.label}: the CA certificate changed; asking for ${this.#o.what} under the new one`,
      );
    await this.#request();
  }

  /**
   * A revoked certificate is not used a moment longer than it takes to notice (docs/ocsp.md):
   * withdrawn, its files removed so a restart does not bring it back, and a new key asked for at
   * once, whatever the renewal time or the back-off after a failure.
   */
  async #checkRevoked(): Promise<void> {
    const cur = this.#current;
    if (!cur || !this.#o.revoked) return;
    const serial = storedSerial(cur.serial) ?? cur.serial.toLowerCase();
    if (!(await this.#o.revoked(serial))) return;
    this.#o.withdraw?.();
    this.#current = undefined;
    rmSync(this.#chainPath, { force: true });
    rmSync(this.#keyPath, { force: true });
    this.#retryAfter = 0;
    this.#backoffMs = SELF_CERT_RETRY_MS;
    this.#o.log.error(
      { serial: displaySerial(serial), pending: this.#pending?.id },
      `${this.#o.label}: ${this.#o.what} was revoked; no longer using it, ${this.#pending ? "waiting for the pending request" : "asking for a new one with a new key"}`,
    );
  }

  /** The saved certificate, if it still chains to this CA's root and is valid; the saved pending request. */
  #loadSaved(root: Uint8Array): void {
    const label = this.#o.label;
    if (existsSync(this.#pendingPath)) {
      try {
        this.#pending = PendingSchema.parse(JSON.parse(readFileSync(this.#pendingPath, "utf8")));
      } catch (e) {
        this.#o.log.warn(
          { file: this.#pendingPath, err: (e as Error).message },
          `${label}: ignoring an unreadable pending request`,
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
      this.#o.install({ ...m, ...leaf });
      this.#o.log.info(
        { serial: leaf.serial, notAfter: leaf.notAfter.toISOString(), dir: this.#o.dir },
        `${label}: installed the saved certificate`,
      );
    } catch (e) {
      this.#o.log.warn(
        { dir: this.#o.dir, err: (e as Error).message },
        `${label}: the saved certificate is not usable; asking for a new one`,
      );
    }
  }

  /** Checks a chain and key: readable, matching, valid now, the leaf signed by `root`, and the caller's checks. */
  #check(m: KeyAndChain, root: Uint8Array): LeafSummary & { der: Uint8Array } {
    const leaf = checkKeyAndChain(m, { cert: this.#chainPath, key: this.#keyPath }, this.#now());
    const ca = new X509Certificate(Buffer.from(root));
    const cert = new X509Certificate(m.chainPem);
    if (!cert.verify(ca.publicKey)) throw new Error("the certificate was not issued by this CA's root");
    this.#o.check?.(cert);
    return { ...leaf, der: new Uint8Array(cert.raw) };
  }

  async #request(): Promise<void> {
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
    const sans = this.#o.sans ?? [];
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: this.#o.subject,
      keys,
      signingAlgorithm: alg,
      extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension([...sans])] : [],
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
        requester: this.#o.requester.name,
        profile: this.#o.profile,
        ...(sans.length > 0 ? { names: sans.map((s) => s.value) } : {}),
        renewal: this.#current !== undefined,
      },
      `${this.#o.label}: requested ${this.#o.what} (custodians approve and sign it like any request)`,
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
    let leaf: LeafSummary & { der: Uint8Array };
    try {
      leaf = this.#check(m, root);
    } catch (e) {
      // Not usable now is not usable later: ask for another rather than look at this one every tick.
      this.#drop(`the certificate of request ${p.id} is not usable: ${(e as Error).message}`);
      return;
    }
    this.#o.log.info(
      { request: p.id, serial: leaf.serial, notAfter: leaf.notAfter.toISOString() },
      `${this.#o.label}: ${this.#o.what} was issued`,
    );
    this.#save(this.#keyPath, m.keyPem);
    this.#save(this.#chainPath, m.chainPem);
    rmSync(this.#pendingPath, { force: true });
    this.#pending = undefined;
    this.#backoffMs = SELF_CERT_RETRY_MS;
    const renewed = this.#current !== undefined;
    this.#current = { ...leaf, chainPem: m.chainPem };
    this.#o.install({ ...m, ...leaf });
    this.#o.log.info(
      { serial: leaf.serial, renewAt: new Date(renewAt(leaf.notBefore, leaf.notAfter)).toISOString() },
      this.#o.installed?.(renewed) ??
        `${this.#o.label}: ${renewed ? "renewed certificate installed" : "certificate installed"}`,
    );
  }

  #drop(why: string): void {
    const wait = this.#backOff();
    this.#o.log.error({ retryInSeconds: wait / 1000 }, `${this.#o.label}: ${why}; will ask again`);
    this.#pending = undefined;
    rmSync(this.#pendingPath, { force: true });
  }

  /** Sets the time of the next attempt after a failure, doubles the next wait; returns this wait. */
  #backOff(): number {
    const wait = this.#backoffMs;
    this.#retryAfter = this.#now() + wait;
    this.#backoffMs = Math.min(wait * 2, SELF_CERT_MAX_RETRY_MS);
    return wait;
  }

  /** Writes a file atomically (temporary file, then rename), readable by this user only. */
  #save(path: string, text: string): void {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  }
}
