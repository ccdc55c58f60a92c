// A CA for the key lifecycle e2e tests (docs/key-lifecycle.md), every node its own OS process:
// made by `tca dev` (DKG with one process per custodian, low-cost keystores), then run as an
// operator would run it — `tca serve` on its database, `tca custodian agent` per custodian,
// `tca ceremony refresh|reshare|repair` by the admin, `tca custodian ceremony` per custodian,
// `tca ceremony sign-roster` for roster changes, `tca request` to issue — so a test can stop and
// restart any of them (restart with a new ca-config after a reshare or repair, the operator's step).
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { expect } from "vitest";
import { CustodianHome } from "../../src/custodian/home.ts";
import { readKeystore } from "../../src/custodian/keystore.ts";
import { DEV_KEYSTORE_SCRYPT_N, DEV_POLICY } from "../../src/dev/local-ca.ts";
import { ROOT, type Proc, type Sandbox } from "./processes.ts";
import { openssl } from "./openssl.ts";
import { KEY_ARGS, makeCsr } from "./dev-ca.ts";

export interface Member {
  name: string;
  signingKey: string;
  hpkeKey: string;
}

export interface LcCa {
  dir: string;
  /** The coordinator in use (changes when it is restarted). */
  url: string;
  coordinator: Proc;
  adminTokenPath: string;
  requesterTokenPath: string;
  rootPath: string;
  /** The ca-config in force (changes after a reshare or repair). */
  configPath: string;
  /** Custodian name → home and passphrase file (new homes are added here). */
  homes: Map<string, { home: string; passphraseFile: string }>;
  agents: Map<string, Proc>;
  /** The tca dev process while it runs (until `serveCa`). */
  dev?: Proc;
}

const FAST = { TCA_LOG_LEVEL: "warn" };

/** A `tca dev` CA of n custodians and threshold t, with tca dev's own agents (or none). */
export async function devCa(
  sb: Sandbox,
  o: { custodians: number; threshold: number; agents: boolean },
): Promise<LcCa> {
  const dir = join(sb.tempDir("tca-lc-"), "ca");
  const dev = sb.tca([
    "dev",
    "--dir",
    dir,
    "--port",
    "0",
    "--custodians",
    String(o.custodians),
    "--threshold",
    String(o.threshold),
    "--no-ocsp",
    ...(o.agents ? [] : ["--no-agents"]),
  ]);
  await dev.waitFor(/tca dev: ready/, 120_000);
  const config = parseYaml(readFileSync(join(dir, "ca-config.yaml"), "utf8")) as { custodians: Member[] };
  const homes = new Map(
    config.custodians.map((c) => [
      c.name,
      {
        home: join(dir, "custodians", c.name),
        passphraseFile: join(dir, "custodians", c.name, "passphrase"),
      },
    ]),
  );
  return {
    dir,
    url: readFileSync(join(dir, "coordinator.url"), "utf8").trim(),
    coordinator: dev,
    dev,
    adminTokenPath: join(dir, "admin.token"),
    requesterTokenPath: join(dir, "requester.token"),
    rootPath: join(dir, "root.pem"),
    configPath: join(dir, "ca-config.yaml"),
    homes,
    agents: new Map(),
  };
}

/**
 * (Re)starts the coordinator as `tca serve` on the CA's database with `configPath` (default: the
 * one in force), after stopping whatever coordinator ran before (tca dev with its agents, or an
 * earlier tca serve).
 */
export async function serveCa(sb: Sandbox, ca: LcCa, configPath = ca.configPath): Promise<void> {
  await stop(ca.coordinator);
  ca.dev = undefined;
  const proc = sb.tca(
    [
      "serve",
      "--config",
      configPath,
      "--db",
      join(ca.dir, "coordinator.db"),
      "--port",
      "0",
      "--share-timeout",
      "5",
      "--no-ocsp",
    ],
    FAST,
  );
  const m = await proc.waitFor(/listening on (http:\/\/\S+)/);
  ca.url = m[1]!;
  ca.coordinator = proc;
  ca.configPath = configPath;
}

/** SIGTERM, and wait for the exit. */
export async function stop(p: Proc | undefined): Promise<void> {
  if (!p) return;
  p.kill("SIGTERM");
  await p.exited;
}

/** `tca custodian agent` for `name` (auto-approves like tca dev's agents), `home` to run another copy. */
export async function startAgent(
  sb: Sandbox,
  ca: LcCa,
  name: string,
  o: { home?: string; config?: string; key?: string } = {},
): Promise<Proc> {
  const h = ca.homes.get(name)!;
  const home = o.home ?? h.home;
  const policy = join(home, "policy.yaml");
  if (!existsSync(policy)) writeFileSync(policy, DEV_POLICY);
  const p = sb.tca(
    [
      "custodian",
      "agent",
      "--home",
      home,
      "--passphrase-file",
      h.passphraseFile,
      "--coordinator",
      ca.url,
      "--config",
      o.config ?? ca.configPath,
    ],
    { TCA_LOG_LEVEL: "info" },
  );
  ca.agents.set(o.key ?? name, p);
  await p.waitFor(/agent started/);
  return p;
}

export async function stopAgents(ca: LcCa, names?: string[]): Promise<void> {
  for (const [k, p] of ca.agents)
    if (!names || names.includes(k)) {
      await stop(p);
      ca.agents.delete(k);
    }
}

/**
 * A certificate for `host` that verifies under the unchanged root: with `tca request` (`cli`), else
 * over HTTP from this process (an openssl CSR, POST, then the certificate once issued), which
 * saves a process start.
 */
export async function issue(
  sb: Sandbox,
  ca: LcCa,
  host: string,
  work: string,
  o: { cli?: boolean } = {},
): Promise<string> {
  const cert = join(work, `${host}.crt`);
  if (o.cli) {
    const p = sb.tca(
      [
        "request",
        host,
        "--coordinator",
        ca.url,
        "--token-file",
        ca.requesterTokenPath,
        "--key-out",
        join(work, `${host}.key`),
        "--cert-out",
        cert,
        "--chain-out",
        join(work, `${host}.chain.pem`),
        "--timeout",
        "60",
      ],
      FAST,
    );
    expect(await p.exited, p.output).toBe(0);
  } else {
    const token = readFileSync(ca.requesterTokenPath, "utf8").trim();
    const csr = makeCsr(work, host, {
      newkey: KEY_ARGS["p-256"]!,
      subject: `/CN=${host}`,
      sans: `DNS:${host}`,
    });
    const res = await fetch(`${ca.url}/api/v1/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ csr: csr.csrPem, profile: "server" }),
    });
    const body = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(body)).toBe(202);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got = await fetch(`${ca.url}/api/v1/requests/${body.id}/certificate?wait=20`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (got.status === 200) {
        writeFileSync(cert, (await got.text()).split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
        break;
      }
      await got.body?.cancel();
      if (Date.now() > deadline)
        throw new Error(`${host}: no certificate within 60 s (last answer ${got.status})`);
    }
  }
  expect(openssl(["verify", "-x509_strict", "-CAfile", ca.rootPath, cert])).toMatch(/: OK/);
  return cert;
}

/** The admin's `tca ceremony KIND ... --wait`, started; resolves the ceremony id it printed. */
export async function startCeremony(
  sb: Sandbox,
  ca: LcCa,
  args: string[],
): Promise<{ admin: Proc; id: string }> {
  const admin = sb.tca(
    ["ceremony", ...args, "--coordinator", ca.url, "--token-file", ca.adminTokenPath, "--wait"],
    FAST,
  );
  const m = await admin.waitFor(/^(?:refresh|reshare|repair) ([0-9a-f-]{36}) started/m);
  return { admin, id: m[1]! };
}

/** `tca custodian ceremony ID` for one custodian (its own process). */
export function takePart(
  sb: Sandbox,
  ca: LcCa,
  name: string,
  id: string,
  o: { config?: string; home?: string } = {},
): Proc {
  const h = ca.homes.get(name)!;
  return sb.tca(
    [
      "custodian",
      "ceremony",
      id,
      "--home",
      o.home ?? h.home,
      "--passphrase-file",
      h.passphraseFile,
      "--coordinator",
      ca.url,
      ...(o.config ? ["--config", o.config] : []),
    ],
    FAST,
  );
}

/** A fixture process that runs the real lifecycle ceremony code but cheats (test/fixtures/evil-lifecycle-custodian.ts). */
export function cheat(
  sb: Sandbox,
  ca: LcCa,
  name: string,
  id: string,
  mode: string,
  victim: string,
  config?: string,
): Proc {
  const h = ca.homes.get(name)!;
  return sb.node(
    [
      "--import",
      "tsx",
      join(ROOT, "test/fixtures/evil-lifecycle-custodian.ts"),
      h.home,
      h.passphraseFile,
      ca.url,
      id,
      mode,
      victim,
      ...(config ? [config] : []),
    ],
    FAST,
  );
}

/** `tca ceremony sign-roster` by each of `names`, one process each; resolves their outputs. */
export async function signRosterBy(
  sb: Sandbox,
  ca: LcCa,
  names: string[],
  config: string,
): Promise<string[]> {
  const procs = names.map((name) => {
    const h = ca.homes.get(name)!;
    return sb.tca(
      [
        "ceremony",
        "sign-roster",
        "--home",
        h.home,
        "--passphrase-file",
        h.passphraseFile,
        "--config",
        config,
        "--coordinator",
        ca.url,
        "--yes",
      ],
      FAST,
    );
  });
  const codes = await Promise.all(procs.map((p) => p.exited));
  expect(codes, procs.map((p) => p.output).join("\n")).toEqual(names.map(() => 0));
  return procs.map((p) => p.stdout);
}

/** A new custodian home with low-cost keystore (as tca dev's), for a reshare's new members. */
export async function newHome(ca: LcCa, name: string): Promise<Member> {
  const home = join(ca.dir, "custodians", name);
  const passphraseFile = join(home, "passphrase");
  const passphrase = randomBytes(24).toString("base64url");
  const id = await new CustodianHome(home).init(name, passphrase, { scryptN: DEV_KEYSTORE_SCRYPT_N });
  writeFileSync(passphraseFile, passphrase + "\n", { mode: 0o600 });
  ca.homes.set(name, { home, passphraseFile });
  return { name: id.name, signingKey: id.signingKey, hpkeKey: id.hpkeKey };
}

/**
 * A new ca-config from the one in force with another threshold and roster, written beside it as
 * FILE; every custodian home gets a copy, as an operator would hand it out.
 */
export function newConfig(
  ca: LcCa,
  file: string,
  edit: (c: { threshold: number; custodians: Member[] }) => { threshold: number; custodians: Member[] },
): string {
  const raw = parseYaml(readFileSync(ca.configPath, "utf8")) as Record<string, unknown> & {
    threshold: number;
    custodians: Member[];
  };
  const next = edit({ threshold: raw.threshold, custodians: raw.custodians.map((c) => ({ ...c })) });
  const path = join(ca.dir, file);
  writeFileSync(path, toYaml({ ...raw, threshold: next.threshold, custodians: next.custodians }));
  return path;
}

/** A copy of a custodian's home as it is now (to show later that its old share is refused). */
export function snapshotHome(ca: LcCa, name: string, as: string): string {
  const to = join(ca.dir, "snapshots", as);
  cpSync(ca.homes.get(name)!.home, to, { recursive: true });
  return to;
}

export const identityOf = (ca: LcCa, name: string): Member => {
  const id = JSON.parse(readFileSync(join(ca.homes.get(name)!.home, "identity.json"), "utf8")) as Member;
  return { name: id.name, signingKey: id.signingKey, hpkeKey: id.hpkeKey };
};

/**
 * The admin's exit code once the ceremony ends; if it does not end within `ms`, fails with every
 * participant's output (what each was waiting for).
 */
export async function ceremonyEnd(admin: Proc, procs: Proc[], ms = 90_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `the ceremony did not end within ${ms} ms:\n${[admin, ...procs].map((p) => p.output).join("\n----\n")}`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([admin.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface KeystoreView {
  share?: { signingShare: string; caKeyId: string; epoch?: number };
  pendingShare?: unknown;
}

/** A custodian's keystore contents (its home's, or another copy's). */
export async function keystoreOf(
  ca: LcCa,
  name: string,
  home = ca.homes.get(name)!.home,
): Promise<KeystoreView> {
  const passphrase = readFileSync(ca.homes.get(name)!.passphraseFile, "utf8").trim();
  return (await readKeystore(join(home, "keystore.json"), passphrase)) as KeystoreView;
}

/** The coordinator's key state in force (GET /api/v1/roster, as the admin). */
export async function keyStateOf(ca: LcCa): Promise<{ epoch: number; rosterDigest: string }> {
  const res = await fetch(`${ca.url}/api/v1/roster`, {
    headers: { authorization: `Bearer ${readFileSync(ca.adminTokenPath, "utf8").trim()}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { keyState: { epoch: number; rosterDigest: string } }).keyState;
}
