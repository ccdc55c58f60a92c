// Builds a complete local CA in one directory: custodian homes with fresh identities, a ca-config
// derived from the example in ca-config/ca.yaml, and tokens. Used by `tca dev` and by the tests,
// so the tests exercise exactly what the quick start does.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { parseCaConfig, type LoadedConfig } from "../config/load.ts";
import { CustodianHome } from "../custodian/home.ts";
import { MIN_SCRYPT_N } from "../custodian/keystore.ts";
import { tokenHash } from "../coordinator/http/auth.ts";
import { OCSP_PROFILE, OCSP_REQUESTER, OCSP_SUBJECT_CN } from "../coordinator/ocsp/signer-cert.ts";

export const EXAMPLE_CONFIG = fileURLToPath(new URL("../../ca-config/ca.yaml", import.meta.url));
const NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];

/**
 * scrypt cost of a local (dev) CA's keystores: the lowest the keystore accepts (2^14, about 70 ms)
 * instead of the default 2^17 (about 0.5 s per unlock, paid by every custodian process of `tca dev`
 * at creation, ceremony and agent start). A local CA keeps each passphrase in a file beside its
 * keystore (custodians/NAME/passphrase), so a costlier KDF would protect nothing there. Only
 * createLocalCa uses it; `tca custodian init` has no way to ask for it, and CustodianHome.save
 * keeps a keystore at the cost it was made with.
 */
export const DEV_KEYSTORE_SCRYPT_N = MIN_SCRYPT_N;

export interface LocalCaLayout {
  dir: string;
  configPath: string;
  dbPath: string;
  adminTokenPath: string;
  requesterTokenPath: string;
  custodians: { name: string; home: string; passphraseFile: string }[];
}

export function custodianNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => NAMES[i] ?? `custodian-${i + 1}`);
}

export function layoutOf(dir: string, names: string[]): LocalCaLayout {
  return {
    dir,
    configPath: join(dir, "ca-config.yaml"),
    dbPath: join(dir, "coordinator.db"),
    adminTokenPath: join(dir, "admin.token"),
    requesterTokenPath: join(dir, "requester.token"),
    custodians: names.map((name) => ({
      name,
      home: join(dir, "custodians", name),
      passphraseFile: join(dir, "custodians", name, "passphrase"),
    })),
  };
}

/** Creates identities, tokens and ca-config for an n-custodian, t-threshold local CA. */
export async function createLocalCa(o: {
  dir: string;
  custodians: number;
  threshold: number;
  publicUrl: string;
}): Promise<{ layout: LocalCaLayout; config: LoadedConfig }> {
  if (o.threshold < 2 || o.threshold > o.custodians)
    throw new Error(`threshold must be between 2 and ${o.custodians}`);
  const layout = layoutOf(o.dir, custodianNames(o.custodians));
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  // scrypt runs on libuv's thread pool, so the n keystores are made in parallel.
  const roster = await Promise.all(
    layout.custodians.map(async (c) => {
      mkdirSync(c.home, { recursive: true, mode: 0o700 });
      const passphrase = randomBytes(24).toString("base64url");
      writeFileSync(c.passphraseFile, passphrase + "\n", { mode: 0o600 });
      const id = await new CustodianHome(c.home).init(c.name, passphrase, {
        scryptN: DEV_KEYSTORE_SCRYPT_N,
      });
      return { name: id.name, signingKey: id.signingKey, hpkeKey: id.hpkeKey };
    }),
  );
  const adminToken = randomBytes(32).toString("base64url");
  const requesterToken = randomBytes(32).toString("base64url");
  writeFileSync(layout.adminTokenPath, adminToken + "\n", { mode: 0o600 });
  writeFileSync(layout.requesterTokenPath, requesterToken + "\n", { mode: 0o600 });

  const template = parseYaml(readFileSync(EXAMPLE_CONFIG, "utf8")) as Record<string, unknown>;
  const raw = {
    ...template,
    ca: { ...(template.ca as object), publicUrl: o.publicUrl },
    threshold: o.threshold,
    custodians: roster,
    admins: [{ name: "admin", tokenSha256: tokenHash(adminToken) }],
    profiles: { ...(template.profiles as object), acme: DEV_ACME_PROFILE },
    acme: { profiles: ["acme"], openRegistration: { requester: "acme" } },
    requesters: [
      {
        name: "dev",
        tokenSha256: tokenHash(requesterToken),
        profiles: ["server", "client"],
        allowedNames: ["*"],
      },
      // ACME accounts registered without external account binding act under this grant (docs/acme.md);
      // in dev, for the acme profile only. No token: ACME clients authenticate with their account key.
      {
        name: "acme",
        tokenSha256: tokenHash(randomBytes(32).toString("base64url")),
        profiles: ["acme"],
        allowedNames: ["*"],
      },
      // The coordinator's own TLS certificate (`tca dev --tls`, docs/tls.md): it submits without a
      // token, so the token behind this hash is thrown away at once.
      {
        name: "coordinator",
        tokenSha256: tokenHash(randomBytes(32).toString("base64url")),
        profiles: ["server"],
        allowedNames: DEV_TLS_NAMES,
      },
      // The OCSP responder's delegated certificate (docs/ocsp.md): profile ocsp-responder from
      // ca-config/ca.yaml, no token either.
      {
        name: OCSP_REQUESTER,
        tokenSha256: tokenHash(randomBytes(32).toString("base64url")),
        profiles: [OCSP_PROFILE],
        allowedNames: [OCSP_SUBJECT_CN],
      },
    ],
  };
  const text = `# Generated by tca dev from ca-config/ca.yaml. Every node holds an identical copy.\n${toYaml(raw)}`;
  const config = parseCaConfig(text, layout.configPath);
  writeFileSync(layout.configPath, text);
  for (const c of layout.custodians) writeFileSync(join(c.home, "ca-config.yaml"), text);
  return { layout, config };
}

/** The profile ACME orders get in dev: a TLS server certificate for 90 days, as public ACME CAs issue. */
const DEV_ACME_PROFILE = {
  description: "TLS server certificates for names validated over ACME",
  defaultValidityHours: 2160,
  maxValidityHours: 2160,
  keyTypes: ["rsa", "ec-p256", "ec-p384", "ed25519"],
  keyUsage: ["digitalSignature", "keyEncipherment"],
  extKeyUsage: ["serverAuth"],
  sans: { dns: true, ip: true, max: 20, requireOne: true },
};

/** Names the dev agents approve for ACME once validated; anything else waits for a person. */
export const DEV_ACME_NAMES = ["localhost", "*.localhost", "*.test"];

/** The names of a dev coordinator's own certificate (`tca dev --tls`). */
export const DEV_TLS_NAMES = ["localhost", "127.0.0.1", "::1"];

/**
 * The dev agents' policy: approve the server and client profiles for the dev requester, the
 * coordinator's own server certificate for its loopback names, and its OCSP responder certificate
 * (at most 7 days, docs/ocsp.md); nothing else.
 */
export const DEV_POLICY = `# Auto-approval policy of this custodian's agent (tca custodian agent).
# Requests that match a rule are approved without a person; anything else waits for
# \`tca custodian approve\`. Every custodian keeps its own policy.
version: 1
autoApprove:
  - name: dev-services
    profiles: [server, client]
    requesters: [dev]
    names: ["*"]
    maxValidityHours: 2160
  - name: coordinator-tls
    profiles: [server]
    requesters: [coordinator]
    names: [localhost, 127.0.0.1, "::1"]
    maxValidityHours: 2160
  - name: ocsp-responder
    profiles: [${OCSP_PROFILE}]
    requesters: [${OCSP_REQUESTER}]
    names: ["${OCSP_SUBJECT_CN}"]
    maxValidityHours: 168
  # ACME orders whose names the coordinator validated (http-01, dns-01, tls-alpn-01) under
  # these names; any other ACME name waits for a person.
  - name: acme-validated
    profiles: [acme]
    requesters: [acme]
    names: [${DEV_ACME_NAMES.map((n) => JSON.stringify(n)).join(", ")}]
    acmeValidated: true
    maxValidityHours: 2160
signCrls: true
# The CA key's own certification request (tca ceremony csr, docs/intermediate.md): a dev CA's
# agents approve it, so intermediate mode can be tried without a person at each custodian.
signCaCsr: true
approvalValidityHours: 24
`;

export function writeDevPolicies(layout: LocalCaLayout): void {
  for (const c of layout.custodians) {
    const p = join(c.home, "policy.yaml");
    if (!existsSync(p)) writeFileSync(p, DEV_POLICY);
  }
}

export function localCaExists(dir: string): boolean {
  return existsSync(join(dir, "ca-config.yaml")) && existsSync(join(dir, "coordinator.db"));
}

/** The lock a running `tca dev` holds on its state directory (its PID, one line). */
export const DEV_LOCK = "tca-dev.lock";
/** Present while a first start is making the CA; gone once its ceremony is complete. */
const CREATING = ".creating";

export class DevLockError extends Error {}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
};

/**
 * Takes the lock on `dir` (creating the directory) or throws DevLockError naming the PID that
 * holds it. A lock left by a process that is gone (SIGKILL, a crash) is taken over. The lock is
 * released by `release()` and when this process exits.
 */
export function acquireDevLock(dir: string): { path: string; release(): void } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, DEV_LOCK);
  const mine = `${process.pid}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600); // O_EXCL: exactly one process creates it
      writeSync(fd, mine);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
    }
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue; // released meanwhile
    }
    const pid = /^[0-9]{1,10}$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (Number.isInteger(pid) && pid > 0 && alive(pid))
      throw new DevLockError(
        `another tca dev (PID ${pid}) is using ${dir}: stop it first` +
          ` (or, if PID ${pid} is not a tca dev, delete ${path})`,
      );
    unlinkSync(path); // stale: its holder is gone
  }
  const release = () => {
    try {
      if (readFileSync(path, "utf8") === mine) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.once("exit", release);
  return {
    path,
    release: () => {
      process.removeListener("exit", release);
      release();
    },
  };
}

/** Removes a dev CA from `dir`, keeping the lock (the caller holds it) and, if asked, the logs. */
export function removeLocalCa(dir: string, o: { keepLogs: boolean }): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir))
    if (entry !== DEV_LOCK && !(o.keepLogs && entry === "logs"))
      rmSync(join(dir, entry), { recursive: true, force: true });
}

/** Marks `dir` as being made by a first start (see finishLocalCa). */
export function startLocalCa(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, CREATING), `${process.pid}\n`);
}

/** The first start completed (the ceremony ran): the CA in `dir` is whole. */
export function finishLocalCa(dir: string): void {
  rmSync(join(dir, CREATING), { force: true });
}

/**
 * True if a first start began making a CA in `dir` and never finished (it was killed before its
 * ceremony completed). Only meaningful while holding the lock: then its maker is gone.
 */
export function localCaHalfMade(dir: string): boolean {
  return existsSync(join(dir, CREATING));
}
