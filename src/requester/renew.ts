// `tca renew` without the command line (docs/revocation.md, "Renewal"): renew a certificate with
// its own key as the credential — a one-time challenge, a signature over it, a CSR with the same
// subject and names (a fresh key with rekey) — follow the renewal until issued, and write the new
// certificate, chain and key atomically. renewDaemon renews at a fraction of each lifetime, runs a
// hook after each renewal and retries with backoff.
import "reflect-metadata";
import { spawn } from "node:child_process";
import {
  createPrivateKey,
  createPublicKey,
  KeyObject,
  randomBytes,
  timingSafeEqual,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import * as x509 from "@peculiar/x509";
import { z } from "zod";
import {
  renewalMessage,
  RenewalChallengeSchema,
  RenewalViewSchema,
  RenewedSchema,
  signRenewal,
  type RenewalView,
} from "../protocol/renewal.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";
import { RequesterClient, toRequesterError } from "./client.ts";
import { RequesterError } from "./errors.ts";
import { splitPemChain } from "./keys.ts";

/** A problem with the files or options given (the CLI's usage error), found before anything is sent. */
export class RenewInputError extends Error {}

export interface RenewOptions {
  certFile: string;
  keyFile: string;
  /** Make a new key of the same type (else the CSR carries the current key). */
  rekey: boolean;
  /** Write into this directory (same file names) instead of over the inputs. */
  outDir?: string;
  coordinator: string;
  /** PEM CA certificates an https:// coordinator must chain to. */
  ca?: string;
  /** How long to wait for the custodians (0 = no limit). */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface RenewOutcome {
  id: string;
  serial: string;
  renewalOf: string;
  notAfter: string;
  certificate: string;
  chain: string;
  /** The key file the certificate goes with (rewritten only with rekey). */
  key: string;
  rekeyed: boolean;
}

/** Where a renewal writes: over the inputs, or the same names in outDir. NAME.crt → NAME.chain.pem. */
export function outputPaths(o: Pick<RenewOptions, "certFile" | "keyFile" | "outDir">): {
  cert: string;
  chain: string;
  key: string;
} {
  const at = (f: string) => (o.outDir !== undefined ? join(resolve(o.outDir), basename(f)) : resolve(f));
  const cert = at(o.certFile);
  const chain = cert.replace(/(\.crt|\.pem|\.cer)?$/, ".chain.pem");
  return { cert, chain: chain === cert ? `${cert}.chain.pem` : chain, key: at(o.keyFile) };
}

/** The same file, as far as the file system can tell: one real path, or one inode. */
function sameFile(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      try {
        return join(realpathSync(dirname(p)), basename(p));
      } catch {
        return resolve(p);
      }
    }
  };
  if (real(a) === real(b)) return true;
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * Refuses inputs and outputs that are one file: a combined PEM (certificate and key in one file)
 * given as both --cert and --key would have the certificate renamed over the key, losing it. tca
 * renew writes the certificate, the chain and the key to separate files.
 */
export function checkDistinctFiles(o: Pick<RenewOptions, "certFile" | "keyFile" | "outDir">): void {
  if (sameFile(o.certFile, o.keyFile))
    throw new RenewInputError(
      `--cert and --key are the same file (${o.certFile}): tca renew writes the certificate and the key to separate files and would replace the key with the certificate; put them in two files first (e.g. openssl pkey -in ${o.certFile} -out svc.key; openssl x509 -in ${o.certFile} -out svc.crt)`,
    );
  const out = outputPaths(o);
  const named: [string, string][] = [
    ["certificate", out.cert],
    ["chain", out.chain],
    ["key", out.key],
  ];
  for (let i = 0; i < named.length; i++)
    for (let j = i + 1; j < named.length; j++)
      if (sameFile(named[i]![1], named[j]![1]))
        throw new RenewInputError(
          `the ${named[i]![0]} and the ${named[j]![0]} would both be written to ${named[i]![1]}: give --cert and --key separate files (the chain goes to NAME.chain.pem beside the certificate)`,
        );
}

/** The certificate (first PEM block of the file) and its key, checked to belong together. */
export function readCertAndKey(certFile: string, keyFile: string): { cert: X509Certificate; key: KeyObject } {
  let cert: X509Certificate;
  try {
    const pem = splitPemChain(readFileSync(certFile, "utf8"))[0];
    if (!pem) throw new Error("no PEM certificate in it");
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new RenewInputError(
      `--cert ${certFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch (e) {
    throw new RenewInputError(
      `--key ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? "not a PEM or DER private key"}`,
    );
  }
  if (!cert.checkPrivateKey(key))
    throw new RenewInputError(`--key ${keyFile} is not the key of the certificate in ${certFile}`);
  return { cert, key };
}

interface KeySpec {
  import: RsaHashedImportParams | EcKeyImportParams | Algorithm;
  sign: Algorithm | EcdsaParams;
  generate: RsaHashedKeyGenParams | EcKeyGenParams | Algorithm;
}

/** The WebCrypto algorithms for a key like `key` (the types tca issues for; tca request makes them). */
function specOf(key: KeyObject): KeySpec {
  const d = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return { import: { name: "Ed25519" }, sign: { name: "Ed25519" }, generate: { name: "Ed25519" } };
    case "ec": {
      const curve = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" }[d?.namedCurve ?? ""];
      const hash = { "P-256": "SHA-256", "P-384": "SHA-384", "P-521": "SHA-512" }[curve ?? ""];
      if (!curve || !hash) break;
      return {
        import: { name: "ECDSA", namedCurve: curve },
        sign: { name: "ECDSA", hash } as EcdsaParams,
        generate: { name: "ECDSA", namedCurve: curve },
      };
    }
    case "rsa": {
      const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
      return {
        import: alg,
        sign: { name: "RSASSA-PKCS1-v1_5" },
        generate: {
          ...alg,
          modulusLength: d?.modulusLength ?? 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
        } as RsaHashedKeyGenParams,
      };
    }
  }
  throw new RenewInputError(
    `a ${key.asymmetricKeyType ?? "?"}${d?.namedCurve ? ` (${d.namedCurve})` : ""} key cannot be renewed by tca renew`,
  );
}

/**
 * A CSR for `cert`'s subject (its exact bytes) and SANs, with the current key or, with `rekey`, a
 * fresh one of the same type (returned as PKCS#8 PEM).
 */
export async function renewalCsr(
  certPem: string,
  key: KeyObject,
  rekey: boolean,
): Promise<{ csrDer: Uint8Array; csrPem: string; spki: Uint8Array; newKeyPem?: string }> {
  const crypto = webcrypto as unknown as Crypto;
  const spec = specOf(key);
  let keys: CryptoKeyPair;
  let newKeyPem: string | undefined;
  if (rekey) {
    keys = (await crypto.subtle.generateKey(spec.generate, true, ["sign", "verify"])) as CryptoKeyPair;
    newKeyPem = KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey)
      .export({ type: "pkcs8", format: "pem" })
      .toString();
  } else {
    const pkcs8 = key.export({ type: "pkcs8", format: "der" });
    const spkiDer = createPublicKey(key).export({ type: "spki", format: "der" });
    keys = {
      privateKey: await crypto.subtle.importKey("pkcs8", pkcs8, spec.import, false, ["sign"]),
      publicKey: await crypto.subtle.importKey("spki", spkiDer, spec.import, true, ["verify"]),
    };
  }
  const current = new x509.X509Certificate(certPem);
  const san = current.getExtension(x509.SubjectAlternativeNameExtension);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: new x509.Name(current.subjectName.toArrayBuffer()),
      keys,
      signingAlgorithm: spec.sign,
      ...(san ? { extensions: [new x509.SubjectAlternativeNameExtension(san.names.toJSON())] } : {}),
    },
    crypto,
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  return {
    csrDer: new Uint8Array(csr.rawData),
    csrPem: csr.toString("pem"),
    spki,
    ...(newKeyPem !== undefined ? { newKeyPem } : {}),
  };
}

/**
 * Writes files so that each is either the old or the new content, never half: a temp file in the
 * same directory, fsync, then rename (POSIX rename is atomic); the directory is fsynced last. A file
 * that is replaced keeps its mode, never looser than `mode` (the bits of both), and its owner and
 * group where this process may set them.
 */
export function writeAtomically(files: readonly { path: string; data: string; mode: number }[]): void {
  const temps: { tmp: string; path: string }[] = [];
  try {
    for (const f of files) {
      const tmp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString("hex")}.tmp`);
      temps.push({ tmp, path: f.path });
      let old: { mode: number; uid: number; gid: number } | undefined;
      try {
        old = statSync(f.path);
      } catch {
        old = undefined;
      }
      const fd = openSync(tmp, "wx", old ? 0o600 & f.mode : f.mode);
      try {
        if (old) {
          fchmodSync(fd, old.mode & 0o777 & f.mode);
          try {
            fchownSync(fd, old.uid, old.gid);
          } catch {
            // Not permitted (another owner, a group this user is not in): the mode still holds.
          }
        }
        writeSync(fd, f.data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const t of temps) renameSync(t.tmp, t.path);
  } catch (e) {
    for (const t of temps) rmSync(t.tmp, { force: true });
    throw e;
  }
  for (const dir of new Set(files.map((f) => dirname(f.path)))) {
    try {
      const fd = openSync(dir, "r");
      fsyncSync(fd);
      closeSync(fd);
    } catch {
      // Some file systems cannot fsync a directory; the renames are still atomic.
    }
  }
}

const LONG_POLL_S = 25;
const FINAL = ["issued", "rejected", "failed"];

/**
 * A renewal submitted and not yet written: what is needed to follow it (its id, and the challenge
 * that is its credential) and to finish it (the key the CSR carries, and with rekey the new private
 * key). The daemon keeps it in memory and in a state file (mode 0600) beside the outputs.
 */
export interface PendingRenewal {
  version: 1;
  id: string;
  challenge: string;
  /** The certificate renewed and the new one (display serials). */
  renewalOf: string;
  serial: string;
  /** SubjectPublicKeyInfo of the CSR's key, base64 DER: the issued certificate must carry it. */
  spki: string;
  /** PKCS#8 PEM of the new key (rekey only). */
  newKeyPem?: string;
}

const PendingSchema = z
  .object({
    version: z.literal(1),
    id: z.string().regex(/^[0-9a-f-]{36}$/),
    challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    renewalOf: z.string().regex(/^[0-9a-f]+$/),
    serial: z.string().regex(/^[0-9a-f]+$/),
    spki: z.string().min(1),
    newKeyPem: z.string().optional(),
  })
  .strict();

/** The daemon's state file for these outputs: `.NAME.renewal.json` beside the certificate. */
export function statePath(o: Pick<RenewOptions, "certFile" | "keyFile" | "outDir">): string {
  const cert = outputPaths(o).cert;
  return join(dirname(cert), `.${basename(cert)}.renewal.json`);
}

function clientFor(o: RenewOptions): RequesterClient {
  return new RequesterClient(o.coordinator, undefined, undefined, o.ca ? { tls: { ca: o.ca } } : {});
}

/** A JSON call; 403/409/422 (revoked, expired, not this key, other names, renewed already) are REFUSED. */
async function call<T>(
  client: RequesterClient,
  method: string,
  path: string,
  schema: z.ZodType<T>,
  opts: Parameters<RequesterClient["http"]["json"]>[3] = {},
): Promise<T> {
  try {
    return await client.http.json(method, path, schema, { timeoutMs: 30_000, ...opts });
  } catch (e) {
    const mapped = toRequesterError(e);
    // The coordinator refused this renewal for good (revoked, expired, not this key, other names).
    if (
      mapped instanceof RequesterError &&
      mapped.status !== undefined &&
      [403, 409, 422].includes(mapped.status)
    )
      throw new RequesterError("REFUSED", mapped.message, mapped.status);
    throw mapped;
  }
}

/** Asks for a challenge, signs it with the current key, and submits the renewal. */
export async function submitRenewal(
  o: RenewOptions,
  cert: X509Certificate,
  key: KeyObject,
  hooks: { onProgress?: (line: string) => void } = {},
): Promise<PendingRenewal> {
  const serial = storedSerial(cert.serialNumber);
  if (serial === undefined) throw new RenewInputError(`--cert ${o.certFile}: unreadable serial`);
  const shown = displaySerial(serial);
  const { csrDer, csrPem, spki, newKeyPem } = await renewalCsr(cert.toString(), key, o.rekey);
  const client = clientFor(o);
  const base = `/api/v1/certificates/${shown}`;
  const { challenge } = await call(client, "POST", `${base}/renewal-challenge`, RenewalChallengeSchema, {
    idempotent: false,
  });
  const signature = signRenewal(key, renewalMessage(serial, challenge, csrDer));
  const renewed = await call(client, "POST", `${base}/renew`, RenewedSchema, {
    body: { csr: csrPem, challenge, signature },
    idempotent: false,
  });
  hooks.onProgress?.(
    `renewal ${renewed.id} of ${shown} submitted: new serial ${renewed.serial}, ${renewed.status}`,
  );
  return {
    version: 1,
    id: renewed.id,
    challenge,
    renewalOf: shown,
    serial: displaySerial(renewed.serial),
    spki: Buffer.from(spki).toString("base64"),
    ...(newKeyPem !== undefined ? { newKeyPem } : {}),
  };
}

/**
 * Follows a renewal until it is issued (long-poll): a rejection or a failure is REFUSED, an
 * unknown renewal a SERVER error with status 404. Without a deadline (timeoutMs 0) it waits for as
 * long as it takes, retrying an unreachable coordinator with backoff; `signal` stops it (TIMEOUT).
 */
export async function followRenewal(
  o: RenewOptions,
  p: PendingRenewal,
  hooks: { onProgress?: (line: string) => void } = {},
): Promise<RenewalView & { chain: string }> {
  const client = clientFor(o);
  const deadline = o.timeoutMs > 0 ? Date.now() + o.timeoutMs : Infinity;
  const stopped = () => new RequesterError("TIMEOUT", `stopped waiting for renewal ${p.id}`);
  let since: string | undefined;
  let view: RenewalView;
  let retry = 1000;
  for (;;) {
    if (o.signal?.aborted) throw stopped();
    const left = deadline === Infinity ? LONG_POLL_S : Math.floor((deadline - Date.now()) / 1000);
    const wait = Math.max(0, Math.min(LONG_POLL_S, left));
    const q = since && wait > 0 ? `?since=${encodeURIComponent(since)}&wait=${wait}` : "";
    try {
      view = await call(client, "GET", `/api/v1/renewals/${p.id}${q}`, RenewalViewSchema, {
        token: p.challenge,
        timeoutMs: 30_000 + wait * 1000,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      retry = 1000;
    } catch (e) {
      if (o.signal?.aborted) throw stopped();
      const transient = e instanceof RequesterError && (e.kind === "UNREACHABLE" || (e.status ?? 0) >= 500);
      if (!transient || Date.now() >= deadline) throw e;
      hooks.onProgress?.(`${(e as Error).message}; retrying in ${Math.round(retry / 1000)} s…`);
      await sleep(retry, o.signal);
      retry = Math.min(retry * 2, 60_000);
      continue;
    }
    const state = `${view.status}/${view.approvals + (view.rejection ? 1 : 0)}`;
    if (state !== since && view.status === "pending")
      hooks.onProgress?.(
        `renewal ${view.id}: pending, ${view.approvals} approval(s), waiting for ${view.missing} more…`,
      );
    since = state;
    if (FINAL.includes(view.status)) break;
    if (Date.now() >= deadline)
      throw new RequesterError(
        "TIMEOUT",
        `renewal ${view.id} is still ${view.status} after ${Math.round(o.timeoutMs / 1000)} s; it stays pending, and renewing this certificate again is refused until it is decided`,
      );
  }
  if (view.status !== "issued" || !view.chain)
    throw new RequesterError(
      "REFUSED",
      `renewal ${view.id} ${view.rejection ? `rejected by ${view.rejection.by}: ${view.rejection.reason}` : `failed: ${view.failure ?? "signing failed"}`}`,
    );
  return { ...view, chain: view.chain };
}

/** Checks the issued certificate against the CSR's key and writes the outputs atomically. */
export function writeRenewal(
  o: RenewOptions,
  p: PendingRenewal,
  view: RenewalView & { chain: string },
): RenewOutcome {
  const out = outputPaths(o);
  const certs = splitPemChain(view.chain);
  const leaf = certs[0];
  if (!leaf) throw new RequesterError("SERVER", `the coordinator sent no certificate for renewal ${view.id}`);
  const leafSpki = new Uint8Array(
    new X509Certificate(leaf).publicKey.export({ type: "spki", format: "der" }),
  );
  const spki = new Uint8Array(Buffer.from(p.spki, "base64"));
  if (leafSpki.length !== spki.length || !timingSafeEqual(leafSpki, spki))
    throw new RequesterError(
      "MISMATCH",
      `the certificate issued for renewal ${view.id} is not for the key in the CSR; not writing it`,
    );
  // The key first in the list: with rekey, the new key is in place before the certificate that needs it.
  writeAtomically([
    ...(p.newKeyPem !== undefined ? [{ path: out.key, data: p.newKeyPem, mode: 0o600 }] : []),
    { path: out.cert, data: leaf, mode: 0o644 },
    { path: out.chain, data: certs.join(""), mode: 0o644 },
  ]);
  if (p.newKeyPem === undefined && !sameFile(out.key, o.keyFile))
    writeAtomically([
      {
        path: out.key,
        data: createPrivateKey(readFileSync(o.keyFile)).export({ type: "pkcs8", format: "pem" }).toString(),
        mode: 0o600,
      },
    ]);
  return {
    id: view.id,
    serial: view.serial,
    renewalOf: view.renewalOf,
    notAfter: view.notAfter,
    certificate: out.cert,
    chain: out.chain,
    key: out.key,
    rekeyed: p.newKeyPem !== undefined,
  };
}

/** Renews once: challenge, signed renewal, wait, verify, write. Rejections are thrown as REFUSED. */
export async function renewOnce(
  o: RenewOptions,
  hooks: { onProgress?: (line: string) => void } = {},
): Promise<RenewOutcome> {
  checkDistinctFiles(o);
  const { cert, key } = readCertAndKey(o.certFile, o.keyFile);
  const p = await submitRenewal(o, cert, key, hooks);
  return writeRenewal(o, p, await followRenewal(o, p, hooks));
}

export interface DaemonOptions extends RenewOptions {
  /** Renew once this fraction of the current certificate's lifetime has passed (0 < f < 1). */
  renewAt: number;
  /** Run with `sh -c` after each renewal. */
  exec?: string;
  /** Send a signal to a process after each renewal. */
  signalProcess?: { pid: number; signal: NodeJS.Signals };
  /** Longest pause between retries after a failure. */
  maxBackoffMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    if (signal?.aborted) return res();
    const t = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      res();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** Runs the hook command; resolves with its exit status (never throws). */
function runHook(cmd: string, env: Record<string, string>): Promise<number | string> {
  return new Promise((res) => {
    const child = spawn("sh", ["-c", cmd], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, ...env },
    });
    child.on("error", (e) => res(e.message));
    child.on("exit", (code, sig) => res(code ?? sig ?? "?"));
  });
}

/**
 * The renewal a previous daemon left in the state file, if it still applies: not when the current
 * certificate is already the renewed one (written, the state file not yet removed) or another one.
 */
function loadPending(
  file: string,
  current: { certFile: string; keyFile: string },
  log: (line: string) => void,
): PendingRenewal | undefined {
  let p: PendingRenewal;
  try {
    const parsed = PendingSchema.parse(JSON.parse(readFileSync(file, "utf8")));
    p = {
      version: 1,
      id: parsed.id,
      challenge: parsed.challenge,
      renewalOf: parsed.renewalOf,
      serial: parsed.serial,
      spki: parsed.spki,
      ...(parsed.newKeyPem !== undefined ? { newKeyPem: parsed.newKeyPem } : {}),
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      log(`ignoring the unreadable state file ${file}: ${(e as Error).message}`);
      rmSync(file, { force: true });
    }
    return undefined;
  }
  try {
    const { cert } = readCertAndKey(current.certFile, current.keyFile);
    const serial = displaySerial(storedSerial(cert.serialNumber) ?? "");
    if (serial !== p.renewalOf) {
      rmSync(file, { force: true });
      return undefined;
    }
  } catch {
    // A key renamed before its certificate (a crash between the two renames): finish the renewal.
  }
  return p;
}

function savePending(file: string, p: PendingRenewal): void {
  writeAtomically([{ path: file, data: `${JSON.stringify(p)}\n`, mode: 0o600 }]);
}

/**
 * Renews for as long as `signal` is not aborted: waits until `renewAt` of the current certificate's
 * lifetime, renews, runs the hooks, and goes on with the new certificate. A submitted renewal is
 * followed until it is decided, however long that takes, never submitted again: it is kept in
 * memory and in the state file (statePath, mode 0600, removed once written), so a restarted daemon
 * follows it too. Failures are retried with exponential backoff; a refusal (revoked, expired,
 * another key, renewed already, rejected by the custodians, a lifetime the CA cannot give) ends the
 * loop, since retrying cannot help. Returns why it stopped.
 */
export async function renewDaemon(
  o: DaemonOptions,
  log: (line: string) => void,
): Promise<{ stopped: "signal" | "refused"; renewals: number; error?: RequesterError }> {
  checkDistinctFiles(o);
  let certFile = o.certFile;
  let keyFile = o.keyFile;
  // The outputs, and so the state file, stay the same: after a renewal the inputs are the outputs.
  const stateFile = statePath(o);
  let pending = loadPending(stateFile, { certFile, keyFile }, log);
  if (pending) log(`following renewal ${pending.id} of ${pending.renewalOf} (from ${stateFile})`);
  let renewals = 0;
  let backoff = 1000;
  const maxBackoff = o.maxBackoffMs ?? 5 * 60_000;
  // The daemon waits for a renewal as long as it takes: no --timeout.
  const opts = (): RenewOptions => ({ ...o, certFile, keyFile, timeoutMs: 0 });
  const refused = (e: RequesterError) => {
    log(`renewal refused: ${e.message}; stopping`);
    rmSync(stateFile, { force: true });
    return { stopped: "refused" as const, renewals, error: e };
  };
  while (!o.signal?.aborted) {
    let na = Infinity;
    let serial = pending?.renewalOf ?? "";
    if (!pending) {
      let cert: X509Certificate;
      let key: KeyObject;
      try {
        ({ cert, key } = readCertAndKey(certFile, keyFile));
      } catch (e) {
        log(
          `cannot read the current certificate: ${(e as Error).message}; retrying in ${Math.round(backoff / 1000)} s`,
        );
        await sleep(backoff, o.signal);
        backoff = Math.min(backoff * 2, maxBackoff);
        continue;
      }
      const nb = Date.parse(cert.validFrom);
      na = Date.parse(cert.validTo);
      const due = nb + o.renewAt * (na - nb);
      serial = displaySerial(storedSerial(cert.serialNumber) ?? "");
      if (due > Date.now()) {
        log(
          `serial ${serial} valid until ${new Date(na).toISOString()}; next renewal at ${new Date(due).toISOString()}`,
        );
        await sleep(due - Date.now(), o.signal);
        if (o.signal?.aborted) break;
      }
      try {
        pending = await submitRenewal(opts(), cert, key, { onProgress: (line) => log(line) });
        savePending(stateFile, pending);
      } catch (e) {
        if (o.signal?.aborted) break;
        if (e instanceof RequesterError && e.kind === "REFUSED") return refused(e);
        if (e instanceof RenewInputError) return refused(new RequesterError("REFUSED", e.message));
        if (Date.now() >= na)
          return refused(
            new RequesterError(
              "REFUSED",
              `certificate ${serial} expired at ${new Date(na).toISOString()} before it could be renewed`,
            ),
          );
        log(`renewal failed: ${(e as Error).message}; retrying in ${Math.round(backoff / 1000)} s`);
        await sleep(backoff, o.signal);
        backoff = Math.min(backoff * 2, maxBackoff);
        continue;
      }
    }
    try {
      const r = writeRenewal(opts(), pending, await followRenewal(opts(), pending, { onProgress: log }));
      rmSync(stateFile, { force: true });
      pending = undefined;
      renewals++;
      backoff = 1000;
      // The outputs are the current certificate and key from now on.
      certFile = r.certificate;
      keyFile = r.key;
      log(
        `renewed ${r.renewalOf} → ${r.serial}${r.rekeyed ? " (new key)" : ""}, valid until ${r.notAfter}; wrote ${r.certificate}`,
      );
      const env = { TCA_CERT: r.certificate, TCA_CHAIN: r.chain, TCA_KEY: r.key, TCA_SERIAL: r.serial };
      if (o.exec !== undefined) log(`--exec exited with ${await runHook(o.exec, env)}`);
      if (o.signalProcess) {
        try {
          process.kill(o.signalProcess.pid, o.signalProcess.signal);
          log(`sent ${o.signalProcess.signal} to process ${o.signalProcess.pid}`);
        } catch (e) {
          log(
            `could not signal process ${o.signalProcess.pid}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          );
        }
      }
    } catch (e) {
      if (o.signal?.aborted) break;
      if (e instanceof RequesterError && (e.kind === "REFUSED" || e.kind === "MISMATCH")) return refused(e);
      if (e instanceof RequesterError && e.status === 404 && pending) {
        // The coordinator does not know it (another database?): nothing to follow, start afresh.
        log(`renewal ${pending.id} is unknown to the coordinator; starting a new one`);
        rmSync(stateFile, { force: true });
        pending = undefined;
      } else
        log(
          `renewal ${pending?.id ?? ""} of ${serial}: ${(e as Error).message}; retrying in ${Math.round(backoff / 1000)} s`,
        );
      await sleep(backoff, o.signal);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }
  return { stopped: "signal", renewals };
}
