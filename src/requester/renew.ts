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
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
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
 * same directory, fsync, then rename (POSIX rename is atomic); the directory is fsynced last.
 */
export function writeAtomically(files: readonly { path: string; data: string; mode: number }[]): void {
  const temps: { tmp: string; path: string }[] = [];
  try {
    for (const f of files) {
      const tmp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString("hex")}.tmp`);
      temps.push({ tmp, path: f.path });
      const fd = openSync(tmp, "wx", f.mode);
      try {
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

/** Renews once: challenge, signed renewal, wait, verify, write. Rejections are thrown as REFUSED. */
export async function renewOnce(
  o: RenewOptions,
  hooks: { onProgress?: (line: string) => void } = {},
): Promise<RenewOutcome> {
  const { cert, key } = readCertAndKey(o.certFile, o.keyFile);
  const out = outputPaths(o);
  const serial = storedSerial(cert.serialNumber);
  if (serial === undefined) throw new RenewInputError(`--cert ${o.certFile}: unreadable serial`);
  const shown = displaySerial(serial);
  const { csrDer, csrPem, spki, newKeyPem } = await renewalCsr(cert.toString(), key, o.rekey);
  const client = new RequesterClient(o.coordinator, undefined, undefined, o.ca ? { tls: { ca: o.ca } } : {});
  const call = async <T>(
    method: string,
    path: string,
    schema: z.ZodType<T>,
    opts: Parameters<typeof client.http.json>[3] = {},
  ) => {
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
  };
  const base = `/api/v1/certificates/${shown}`;
  const { challenge } = await call("POST", `${base}/renewal-challenge`, RenewalChallengeSchema, {
    idempotent: false,
  });
  const signature = signRenewal(key, renewalMessage(serial, challenge, csrDer));
  const renewed = await call("POST", `${base}/renew`, RenewedSchema, {
    body: { csr: csrPem, challenge, signature },
    idempotent: false,
  });
  hooks.onProgress?.(
    `renewal ${renewed.id} of ${shown} submitted: new serial ${renewed.serial}, ${renewed.status}`,
  );

  const deadline = o.timeoutMs > 0 ? Date.now() + o.timeoutMs : Infinity;
  let since: string | undefined;
  let view: RenewalView;
  for (;;) {
    if (o.signal?.aborted) throw new RequesterError("TIMEOUT", `stopped waiting for renewal ${renewed.id}`);
    const left = deadline === Infinity ? LONG_POLL_S : Math.floor((deadline - Date.now()) / 1000);
    const wait = Math.max(0, Math.min(LONG_POLL_S, left));
    const q = since && wait > 0 ? `?since=${encodeURIComponent(since)}&wait=${wait}` : "";
    try {
      view = await call("GET", `/api/v1/renewals/${renewed.id}${q}`, RenewalViewSchema, {
        token: challenge,
        timeoutMs: 30_000 + wait * 1000,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (e) {
      if (o.signal?.aborted) throw new RequesterError("TIMEOUT", `stopped waiting for renewal ${renewed.id}`);
      const transient = e instanceof RequesterError && (e.kind === "UNREACHABLE" || (e.status ?? 0) >= 500);
      if (!transient || Date.now() >= deadline) throw e;
      hooks.onProgress?.(`${(e as Error).message}; retrying…`);
      await new Promise((r) => setTimeout(r, 1000));
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
        `renewal ${view.id} is still ${view.status} after ${Math.round(o.timeoutMs / 1000)} s`,
      );
  }
  if (view.status !== "issued" || !view.chain)
    throw new RequesterError(
      "REFUSED",
      `renewal ${view.id} ${view.rejection ? `rejected by ${view.rejection.by}: ${view.rejection.reason}` : `failed: ${view.failure ?? "signing failed"}`}`,
    );
  const certs = splitPemChain(view.chain);
  const leaf = certs[0];
  if (!leaf) throw new RequesterError("SERVER", `the coordinator sent no certificate for renewal ${view.id}`);
  const leafSpki = new Uint8Array(
    new X509Certificate(leaf).publicKey.export({ type: "spki", format: "der" }),
  );
  if (leafSpki.length !== spki.length || !timingSafeEqual(leafSpki, spki))
    throw new RequesterError(
      "MISMATCH",
      `the certificate issued for renewal ${view.id} is not for the key in the CSR; not writing it`,
    );
  // The key first in the list: with rekey, the new key is in place before the certificate that needs it.
  writeAtomically([
    ...(newKeyPem !== undefined ? [{ path: out.key, data: newKeyPem, mode: 0o600 }] : []),
    { path: out.cert, data: leaf, mode: 0o644 },
    { path: out.chain, data: certs.join(""), mode: 0o644 },
  ]);
  if (newKeyPem === undefined && out.key !== resolve(o.keyFile))
    writeAtomically([
      { path: out.key, data: key.export({ type: "pkcs8", format: "pem" }).toString(), mode: 0o600 },
    ]);
  return {
    id: view.id,
    serial: view.serial,
    renewalOf: view.renewalOf,
    notAfter: view.notAfter,
    certificate: out.cert,
    chain: out.chain,
    key: out.key,
    rekeyed: newKeyPem !== undefined,
  };
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
 * Renews for as long as `signal` is not aborted: waits until `renewAt` of the current certificate's
 * lifetime, renews, runs the hooks, and goes on with the new certificate. Failures are retried with
 * exponential backoff; a refusal (revoked, expired, another key) ends the loop, since retrying
 * cannot help. Returns why it stopped.
 */
export async function renewDaemon(
  o: DaemonOptions,
  log: (line: string) => void,
): Promise<{ stopped: "signal" | "refused"; renewals: number; error?: RequesterError }> {
  let certFile = o.certFile;
  let keyFile = o.keyFile;
  let renewals = 0;
  let backoff = 1000;
  const maxBackoff = o.maxBackoffMs ?? 5 * 60_000;
  while (!o.signal?.aborted) {
    let cert: X509Certificate;
    try {
      ({ cert } = readCertAndKey(certFile, keyFile));
    } catch (e) {
      log(
        `cannot read the current certificate: ${(e as Error).message}; retrying in ${Math.round(backoff / 1000)} s`,
      );
      await sleep(backoff, o.signal);
      backoff = Math.min(backoff * 2, maxBackoff);
      continue;
    }
    const nb = Date.parse(cert.validFrom);
    const na = Date.parse(cert.validTo);
    const due = nb + o.renewAt * (na - nb);
    const serial = displaySerial(storedSerial(cert.serialNumber) ?? "");
    if (due > Date.now()) {
      log(
        `serial ${serial} valid until ${new Date(na).toISOString()}; next renewal at ${new Date(due).toISOString()}`,
      );
      await sleep(due - Date.now(), o.signal);
      if (o.signal?.aborted) break;
    }
    try {
      const r = await renewOnce({ ...o, certFile, keyFile }, { onProgress: (line) => log(line) });
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
      if (e instanceof RequesterError && e.kind === "REFUSED" && e.status !== undefined) {
        log(`renewal refused: ${e.message}; stopping`);
        return { stopped: "refused", renewals, error: e };
      }
      if (Date.now() >= na) {
        const err = new RequesterError(
          "REFUSED",
          `certificate ${serial} expired at ${new Date(na).toISOString()} before it could be renewed`,
        );
        log(`${err.message}; stopping`);
        return { stopped: "refused", renewals, error: err };
      }
      log(`renewal failed: ${(e as Error).message}; retrying in ${Math.round(backoff / 1000)} s`);
      await sleep(backoff, o.signal);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }
  return { stopped: "signal", renewals };
}
