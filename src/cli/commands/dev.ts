import type { Command } from "commander";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { loadCaConfig } from "../../config/load.ts";
import { startCoordinator, type RunningCoordinator, type TlsSetting } from "../../coordinator/server.ts";
import { redactLocation } from "../../coordinator/store/open.ts";
import { acmeOption, databaseOption } from "./serve.ts";
import { createAcme } from "../../acme/router.ts";
import { createConsole } from "../../console/router.ts";
import type { CoordinatorServices } from "../../coordinator/services.ts";
import { ROUTES } from "../../acme/paths.ts";
import {
  acquireDevLock,
  createLocalCa,
  custodianNames,
  DevLockError,
  DEV_ACME_NAMES,
  DEV_TLS_NAMES,
  finishLocalCa,
  layoutOf,
  localCaExists,
  localCaHalfMade,
  removeLocalCa,
  startLocalCa,
  writeDevPolicies,
} from "../../dev/local-ca.ts";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { connectCustodian } from "../../custodian/connect.ts";
import { progress, runCommand, UsageError } from "../output.ts";
import { waitForCeremony } from "./ceremony.ts";
import { registerDevRefresh } from "./dev-refresh.ts";
import { z } from "zod";
import { toPem } from "../../x509/der.ts";
import pino from "pino";

const TCA_BIN = fileURLToPath(new URL("../../../bin/tca.js", import.meta.url));

interface DevOpts {
  dir: string;
  port: string;
  custodians: string;
  threshold: string;
  reset?: boolean;
  shareTimeout: string;
  agents: boolean;
  databaseUrl?: string;
  coordinators: string;
  tls?: boolean;
  ocsp?: boolean;
  acmeHttpPort?: string;
  acmeTlsPort?: string;
  acmeResolver?: string;
}

function readLastLine(path: string): string {
  try {
    return (
      readFileSync(path, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .pop() ?? ""
    );
  } catch {
    return "";
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export function registerDev(program: Command): void {
  const dev = program
    .command("dev")
    .description(
      "run a complete local CA: coordinator on 127.0.0.1, N custodians, DKG and root (SQLite, or PostgreSQL with --database-url)",
    )
    .option("--dir <dir>", "state directory", ".tca-dev")
    .option("--port <port>", "coordinator port (0 = any free port)", "8443")
    .option("--custodians <n>", "number of custodians", "3")
    .option("--threshold <t>", "signatures needed", "2")
    .option("--reset", "throw away an existing dev CA in --dir and make a new one")
    .option(
      "--database-url <url>",
      "keep the coordinators' data in this PostgreSQL database instead of DIR/coordinator.db (default: $DATABASE_URL)",
    )
    .option(
      "--coordinators <n>",
      "coordinator replicas to run on the database (more than 1 needs --database-url); their URLs go to DIR/coordinators.txt",
      "1",
    )
    .option(
      "--no-agents",
      "do not start the custodian agents (every request then waits for `tca custodian approve`)",
    )
    .option(
      "--share-timeout <seconds>",
      "re-form a signing session when a signer stays silent this long",
      "15",
    )
    .option(
      "--tls",
      "serve HTTPS: the CA issues the coordinator its own certificate after the ceremony (root in DIR/root.pem; docs/tls.md)",
    )
    .option(
      "--ocsp",
      "run the OCSP responder even with --no-agents (its certificate then waits for custodians to approve it)",
    )
    .option(
      "--no-ocsp",
      "do not run the OCSP responder (by default it runs with the agents, which approve its certificate; docs/ocsp.md)",
    )
    .option("--acme-http-port <port>", "ACME http-01: the port validation fetches from", "80")
    .option("--acme-tls-port <port>", "ACME tls-alpn-01: the port validation connects to", "443")
    .option(
      "--acme-resolver <host:port>",
      "ACME: the DNS server for every lookup validation makes (TXT, A, AAAA); default: the system resolver",
    )
    .action((o: DevOpts) => runCommand(() => runDev(o)));
  registerDevRefresh(dev);
}

/**
 * `npm start --reset` (without `--`) hands `--reset` to npm, which keeps it as $npm_config_reset and
 * starts `tca dev` without it: the flag would be dropped silently. Under `npm start`, any of tca
 * dev's options found there is a usage error saying how to pass it.
 */
export function npmSwallowedFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.npm_lifecycle_event === undefined) return [];
  const flags: Record<string, string> = {
    npm_config_reset: "--reset",
    npm_config_agents: "--no-agents",
    npm_config_tls: "--tls",
    npm_config_port: "--port",
    npm_config_dir: "--dir",
    npm_config_custodians: "--custodians",
    npm_config_threshold: "--threshold",
    npm_config_coordinators: "--coordinators",
    npm_config_database_url: "--database-url",
    npm_config_share_timeout: "--share-timeout",
    npm_config_acme_http_port: "--acme-http-port",
    npm_config_acme_tls_port: "--acme-tls-port",
    npm_config_acme_resolver: "--acme-resolver",
  };
  return Object.entries(flags)
    .filter(([k]) => env[k] !== undefined)
    .map(([, flag]) => flag);
}

/** Whether something listens on 127.0.0.1:port already (checked before any state is written). */
async function portInUse(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", (e: NodeJS.ErrnoException) => res(e.code === "EADDRINUSE"));
    s.listen(port, "127.0.0.1", () => s.close(() => res(false)));
  });
}

async function runDev(o: DevOpts): Promise<void> {
  const swallowed = npmSwallowedFlags();
  if (swallowed.length > 0)
    throw new UsageError(
      `npm kept ${swallowed.join(" ")} for itself, so tca dev never saw ${swallowed.length > 1 ? "them" : "it"}: use npm start -- ${swallowed.join(" ")}`,
    );
  const dir = resolve(o.dir);
  const n = Number(o.custodians);
  const t = Number(o.threshold);
  if (!Number.isInteger(n) || n < 2 || n > 20)
    throw new UsageError("--custodians must be an integer from 2 to 20");
  if (!Number.isInteger(t) || t < 2 || t > n)
    throw new UsageError(`--threshold must be an integer from 2 to ${n}`);
  const acmeValidation = acmeOption(o);
  const replicas = Number(o.coordinators);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 8)
    throw new UsageError("--coordinators must be an integer from 1 to 8");
  const databaseUrl = o.databaseUrl ?? process.env.DATABASE_URL;
  if (replicas > 1 && !databaseUrl)
    throw new UsageError(
      "--coordinators above 1 needs --database-url: replicas share one PostgreSQL database (SQLite has one writer)",
    );
  // One tca dev per state directory: a second one (or a --reset of a running one) would pull its
  // database and key shares from under it. A lock whose PID is gone is taken over.
  try {
    acquireDevLock(dir);
  } catch (e) {
    if (!(e instanceof DevLockError)) throw e;
    throw new UsageError(o.reset ? `--reset refused: ${e.message}` : e.message);
  }
  if (o.reset) removeLocalCa(dir, { keepLogs: false });
  else if (localCaHalfMade(dir)) {
    // A first start that was killed before its ceremony completed: start again from nothing.
    progress(`removing the half-made dev CA in ${dir} (an earlier first start did not finish)`);
    removeLocalCa(dir, { keepLogs: true });
  }

  const reuse = localCaExists(dir);
  // A first start that fails leaves nothing half-made behind: no config, identities or database
  // that the next start would take for a CA (the logs stay, they say why).
  const undo = () => {
    if (reuse) return;
    removeLocalCa(dir, { keepLogs: true });
    progress(`removed the half-made dev CA from ${dir} (logs kept in ${join(dir, "logs")})`);
  };
  let port = Number(o.port);
  if (reuse) {
    const existing = parseYaml(readFileSync(join(dir, "ca-config.yaml"), "utf8")) as {
      ca?: { publicUrl?: string };
      custodians?: unknown[];
    };
    port = Number(new URL(existing.ca?.publicUrl ?? "http://127.0.0.1:8443").port);
    progress(`reusing the dev CA in ${dir} (use --reset for a new one)`);
  } else {
    if (port === 0) port = await freePort();
    else if (await portInUse(port))
      throw new Error(
        `port ${port} is in use (another tca dev or npm start?): pass --port PORT, or --port 0 for any free port`,
      );
    progress(`creating a ${t}-of-${n} dev CA in ${dir}`);
    startLocalCa(dir);
    try {
      await createLocalCa({ dir, custodians: n, threshold: t, publicUrl: `http://127.0.0.1:${port}` });
    } catch (e) {
      undo();
      throw e;
    }
  }
  const config = loadCaConfig(join(dir, "ca-config.yaml"));
  if (o.tls && !config.config.requesters.some((r) => r.name === "coordinator"))
    throw new UsageError(
      `the dev CA in ${dir} was made before tca dev could serve TLS (its ca-config has no requester "coordinator"): start it with --reset --tls`,
    );
  const layout = layoutOf(dir, custodianNames(config.config.custodians.length));
  const database = databaseOption(databaseUrl, layout.dbPath);
  // A dev CA's key shares belong to the database its ceremony ran on: never mix them up.
  const storagePath = join(dir, "storage");
  const storage = redactLocation(database);
  if (reuse && existsSync(storagePath) && readFileSync(storagePath, "utf8").trim() !== storage)
    throw new UsageError(
      `the dev CA in ${dir} keeps its data in ${readFileSync(storagePath, "utf8").trim()}, not ${storage}: pass the same --database-url, or --reset`,
    );
  writeFileSync(storagePath, storage + "\n");
  // ACME is on when the dev CA's ca-config has it (every dev CA made since tca had ACME).
  const acme = config.config.acme ? acmeValidation : undefined;
  if (!acme)
    progress(`no ACME: the dev CA in ${dir} was made before tca dev served ACME (--reset for a new one)`);
  const logger = pino({ level: process.env.TCA_LOG_LEVEL ?? "warn" }, process.stderr);
  const shareTimeoutMs = Number(o.shareTimeout) * 1000;
  // Replicas run in this process, each with its own store, pool and listener: one CA, several
  // coordinators (the first on --port, the others on free ports).
  const running: RunningCoordinator[] = [];
  // With --tls each replica asks for (and keeps) a certificate of its own.
  const tlsOf = (i: number): { tls?: TlsSetting } =>
    o.tls
      ? {
          tls: {
            mode: "auto",
            names: DEV_TLS_NAMES,
            dir: join(dir, i === 0 ? "coordinator-tls" : `coordinator-${i + 1}-tls`),
            profile: "server",
          },
        }
      : {};
  // The OCSP responder (docs/ocsp.md): with the agents unless --no-ocsp; each replica its own key.
  const ocspWanted = o.ocsp ?? o.agents;
  const ocspOn = ocspWanted && config.config.requesters.some((r) => r.name === "ocsp");
  if (ocspWanted && !ocspOn)
    progress(
      `no OCSP: the dev CA in ${dir} was made before tca dev ran an OCSP responder (--reset for a new one)`,
    );
  const ocspOf = (i: number): { ocsp?: { dir: string } } =>
    ocspOn ? { ocsp: { dir: join(dir, i === 0 ? "ocsp" : `ocsp-${i + 1}`) } } : {};
  try {
    for (let i = 0; i < replicas; i++)
      running.push(
        await startCoordinator({
          config,
          database,
          port: i === 0 ? port : 0,
          shareTimeoutMs,
          logger,
          ...tlsOf(i),
          ...ocspOf(i),
          extensions: [
            (s) => createConsole(s, { logger }), // the read-only web console at /ui/ (docs/console.md)
            ...(acme ? [(s: CoordinatorServices) => createAcme(s, { validation: acme, logger })] : []),
          ],
        }),
      );
  } catch (e) {
    for (const c of running) await c.close();
    undo();
    throw e;
  }
  const coordinator = running[0]!;
  // Plain http:// until TLS is on (with --tls: the key ceremony runs before any root exists).
  let urls = running.map((c) => c.url);
  const writeUrls = () => {
    writeFileSync(join(dir, "coordinator.url"), urls[0] + "\n");
    writeFileSync(join(dir, "coordinators.txt"), urls.join("\n") + "\n");
  };
  writeUrls();
  const children = new Set<ChildProcess>();
  const stopAll = async () => {
    const exits = [...children].map(
      (c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r))),
    );
    for (const c of children) c.kill("SIGTERM");
    // Agents hand back their commitments on SIGTERM; give them a moment before the coordinator goes.
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    for (const c of running) await c.close();
  };
  const shutdown = () => void stopAll().then(() => process.exit(0));
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
  progress(`coordinator${urls.length > 1 ? "s" : ""}: ${urls.join(", ")} (data: ${storage})`);

  if (!(await coordinator.services.caCertificate())) {
    const client = connectCustodian({ urls: coordinator.url });
    const adminToken = readFileSync(layout.adminTokenPath, "utf8").trim();
    const started = await client.post(
      "/api/v1/ceremonies",
      {},
      z.object({ id: z.string() }).passthrough(),
      adminToken,
    );
    progress(`key ceremony ${started.id}: ${layout.custodians.length} custodian processes`);
    mkdirSync(join(dir, "logs"), { recursive: true });
    // One `tca custodian dkg` process per custodian, all at once: each holds only its own share.
    const exits = layout.custodians.map(
      (c) =>
        new Promise<{ name: string; code: number; log: string }>((res) => {
          const log = join(dir, "logs", `${c.name}-dkg.log`);
          const fd = openSync(log, "a");
          const child = spawn(
            process.execPath,
            [
              TCA_BIN,
              "custodian",
              "dkg",
              "--home",
              c.home,
              "--coordinator",
              coordinator.url,
              "--ceremony",
              started.id,
              "--passphrase-file",
              c.passphraseFile,
            ],
            { stdio: ["ignore", "ignore", process.env.TCA_DEV_VERBOSE ? "inherit" : fd] },
          );
          closeSync(fd);
          children.add(child);
          child.on("exit", (code) => (children.delete(child), res({ name: c.name, code: code ?? 1, log })));
        }),
    );
    // A custodian process that stops before the ceremony is over would leave the others waiting for
    // its messages until they time out: stop at once and say which one, and why.
    const stopped = new Promise<never>((_, reject) => {
      for (const e of exits) {
        void e.then(({ name, code, log }) => {
          if (code === 0) return;
          const last = readLastLine(log);
          reject(
            new Error(
              `custodian ${name}'s ceremony process stopped (exit code ${code})${last ? `: ${last}` : ""} (log: ${log})`,
            ),
          );
        });
      }
    });
    const following = new AbortController();
    try {
      await Promise.race([waitForCeremony(client, started.id, following.signal, adminToken), stopped]);
    } catch (e) {
      following.abort(); // its pending long-poll would hold the coordinator's close() open
      await stopAll();
      undo();
      throw e;
    }
    stopped.catch(() => undefined);
    const codes = (await Promise.all(exits)).map((x) => x.code);
    if (codes.some((c) => c !== 0)) progress(`warning: custodian exit codes ${codes.join(", ")}`);
  }
  finishLocalCa(dir);
  if (o.agents) {
    writeDevPolicies(layout);
    mkdirSync(join(dir, "logs"), { recursive: true });
    for (const c of layout.custodians) {
      const log = openSync(join(dir, "logs", `${c.name}-agent.log`), "a");
      const child = spawn(
        process.execPath,
        [
          TCA_BIN,
          "custodian",
          "agent",
          "--home",
          c.home,
          "--coordinator",
          urls.join(","),
          "--passphrase-file",
          c.passphraseFile,
        ],
        {
          stdio: ["ignore", log, log],
          // The agent stops when this process is gone, even if it was SIGKILLed.
          env: { ...process.env, TCA_STOP_WITH_PARENT: String(process.pid) },
        },
      );
      children.add(child);
      child.on("exit", () => children.delete(child));
    }
    progress(
      `${layout.custodians.length} custodian agents running (logs in ${join(dir, "logs")}); they auto-approve the server and client profiles`,
    );
  }
  // The root, for `openssl verify -CAfile`, curl --cacert and ACME clients' trust (with --tls).
  const rootPath = join(dir, "root.pem");
  writeFileSync(rootPath, toPem((await coordinator.services.caCertificate())!, "CERTIFICATE"));
  if (o.tls) {
    if (!running.every((c) => c.tls.active))
      progress(
        o.agents
          ? "waiting for the custodians to issue the coordinator's TLS certificate (requester coordinator)"
          : "waiting for the coordinator's TLS certificate: approve its request (requester coordinator) with `tca custodian approve`",
      );
    urls = await Promise.all(running.map((c) => c.tls.whenActive()));
    writeUrls();
    progress(`TLS on: ${urls.join(", ")} (CA root in ${rootPath})`);
  }
  const url = urls[0]!;
  // With agents, the responder's certificate is issued within moments: wait, so OCSP answers once
  // this says ready. Without them it waits for custodians at a terminal, as said here.
  if (running.some((c) => c.ocsp.state === "waiting")) {
    if (o.agents)
      await Promise.all(running.map((c) => (c.ocsp.state === "off" ? undefined : c.ocsp.whenReady())));
    else
      progress(
        "the OCSP responder waits for its certificate: approve its request (requester ocsp) with `tca custodian approve`",
      );
  }
  const ocspReady = running[0]!.ocsp.state === "ready";
  const acmeDirectory = acme ? `${url}${ROUTES.directory}` : undefined;
  if (acmeDirectory) writeFileSync(join(dir, "acme-directory.txt"), acmeDirectory + "\n");
  const cacert = o.tls ? ` --cacert ${rootPath}` : "";
  const caFile = o.tls ? ` --ca-file ${rootPath}` : "";
  const ready = [
    "",
    `tca dev CA ready: ${config.config.threshold}-of-${config.config.custodians.length}, "${config.config.ca.subject}"`,
    `  coordinator     ${urls.join(", ")}`,
    `  data            ${storage}`,
    `  state           ${dir}`,
    `  requester token ${layout.requesterTokenPath}`,
    ...(ocspReady || running[0]!.ocsp.state === "waiting"
      ? [`  OCSP responder  ${url}/ocsp${ocspReady ? "" : " (waiting for its certificate)"}`]
      : []),
    `  web console     ${url}/ui/ (log in with the admin token)`,
    ...(acmeDirectory
      ? [
          `  ACME directory  ${acmeDirectory} (open registration; agents approve validated ${DEV_ACME_NAMES.join(", ")})`,
        ]
      : []),
    "",
  ];
  if (!o.agents) {
    // No agents: nothing approves on its own, so a request waits for custodians at a terminal.
    const [a, b] = layout.custodians;
    const as = (c: typeof a) =>
      `./bin/tca.js custodian approve ID --home ${c!.home} --passphrase-file ${c!.passphraseFile}`;
    process.stdout.write(
      [
        ...ready,
        `No agents: each request waits for ${config.config.threshold} custodians to approve it. Try it (another terminal):`,
        `  ./bin/tca.js request svc.example.internal --no-wait --coordinator ${url} --token-file ${layout.requesterTokenPath}${caFile}`,
        "then approve the printed request ID as two custodians, each in its own terminal:",
        `  ${as(a)}`,
        `  ${as(b)}`,
        "",
        "tca dev: ready (Ctrl-C to stop)",
        "",
      ].join("\n"),
    );
    return;
  }
  process.stdout.write(
    [
      ...ready,
      "Try it (another terminal):",
      `  TOKEN=$(cat ${layout.requesterTokenPath})`,
      "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout svc.key -out svc.csr \\",
      '    -subj "/CN=svc.example.internal" -addext "subjectAltName=DNS:svc.example.internal"',
      // As the README's Quick start: each step that fails stops there and shows why.
      `  curl -sS --fail-with-body${cacert} -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/pkcs10" \\`,
      `    --data-binary @svc.csr "${url}/api/v1/requests?profile=server" -o request.json \\`,
      "    || { cat request.json; false; }",
      `  ID=$(node -p 'require("./request.json").id')`,
      `  curl -sS --fail-with-body${cacert} -H "Authorization: Bearer $TOKEN" \\`,
      `    "${url}/api/v1/requests/$ID/certificate?wait=30" -o svc.pem || { cat svc.pem; false; }`,
      `  curl -sSf${cacert} ${url}/ca.pem -o root.pem`,
      "  openssl verify -CAfile root.pem svc.pem",
      "",
      "Or with the CLI:",
      `  ./bin/tca.js request svc.example.internal --coordinator ${url} --token-file ${layout.requesterTokenPath}${caFile}`,
      ...(acmeDirectory && acme
        ? [
            "",
            `Or with ACME (http-01 fetches from port ${acme.httpPort} of the name's address):`,
            `  ${o.tls ? `LEGO_CA_CERTIFICATES=${rootPath} ` : ""}lego --server ${acmeDirectory} --accept-tos --email dev@example.test \\`,
            `    --domains localhost --http --http.port :${acme.httpPort} --path .lego run`,
          ]
        : []),
      "",
      "tca dev: ready (Ctrl-C to stop)",
      "",
    ].join("\n"),
  );
}
