// `tca dev refresh`: a refresh (docs/key-lifecycle.md) of the CA key of a running `tca dev`, as an
// operator would run one: the admin starts it with the dev CA's admin token, and each custodian
// takes part with its own `tca custodian ceremony` process (homes and passphrase files are in the
// dev directory). The dev agents keep running and pick their new shares up once it completes.
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCaConfig } from "../../config/load.ts";
import { CoordinatorClient } from "../../custodian/client.ts";
import { layoutOf } from "../../dev/local-ca.ts";
import { HttpClient } from "../../protocol/http-client.ts";
import { LifecycleViewSchema } from "../../protocol/lifecycle.ts";
import { printResult, progress, runCommand, UsageError } from "../output.ts";
import { lifecycleOutcome, waitForLifecycle } from "./ceremony.ts";

const TCA_BIN = fileURLToPath(new URL("../../../bin/tca.js", import.meta.url));

function lastLine(path: string): string {
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

/**
 * Registers `refresh` under `tca dev`. Its directory is `tca dev`'s own --dir (commander gives a
 * parent's options to the parent even after the subcommand's name), so both spell it the same.
 */
export function registerDevRefresh(dev: Command): void {
  dev
    .command("refresh")
    .description(
      "refresh the key shares of the tca dev running in --dir: every custodian gets a new share of the same CA key",
    )
    .option("--json", "print the completed ceremony as JSON")
    .action((o: { json?: boolean }, cmd: Command) =>
      runCommand(() => devRefresh(resolve((cmd.parent?.opts() as { dir: string }).dir), !!o.json)),
    );
}

async function devRefresh(dir: string, json: boolean): Promise<void> {
  const urlPath = join(dir, "coordinator.url");
  if (!existsSync(urlPath) || !existsSync(join(dir, "ca-config.yaml")))
    throw new UsageError(`no dev CA in ${dir}: start one with tca dev --dir ${dir}`);
  const url = readFileSync(urlPath, "utf8").trim();
  const config = loadCaConfig(join(dir, "ca-config.yaml"));
  const layout = layoutOf(
    dir,
    config.config.custodians.map((c) => c.name),
  );
  const adminToken = readFileSync(layout.adminTokenPath, "utf8").trim();
  // A dev CA with --tls serves a certificate from its own root (DIR/root.pem).
  const rootPath = join(dir, "root.pem");
  const tls =
    url.startsWith("https:") && existsSync(rootPath) ? { ca: readFileSync(rootPath, "utf8") } : undefined;
  const client = new CoordinatorClient(new HttpClient(url, tls ? { tls } : {}));
  let started;
  try {
    started = await client.post("/api/v1/lifecycle", { kind: "refresh" }, LifecycleViewSchema, adminToken);
  } catch (e) {
    if ((e as { code?: string }).code === "COORDINATOR_UNREACHABLE")
      throw new UsageError(`the tca dev in ${dir} is not running (${url} does not answer): start it first`);
    throw e;
  }
  const id = started.id;
  progress(
    `refresh ${id}: epoch ${started.plan.fromEpoch} → ${started.plan.toEpoch}, ${layout.custodians.length} custodian processes`,
  );
  mkdirSync(join(dir, "logs"), { recursive: true });
  const children = layout.custodians.map((c) => {
    const log = join(dir, "logs", `${c.name}-refresh.log`);
    const fd = openSync(log, "a");
    const child = spawn(
      process.execPath,
      [
        TCA_BIN,
        "custodian",
        "ceremony",
        id,
        "--home",
        c.home,
        "--coordinator",
        url,
        "--passphrase-file",
        c.passphraseFile,
      ],
      { stdio: ["ignore", fd, process.env.TCA_DEV_VERBOSE ? "inherit" : fd] },
    );
    closeSync(fd);
    const exited = new Promise<{ name: string; code: number; log: string }>((res) =>
      child.on("exit", (code) => res({ name: c.name, code: code ?? 1, log })),
    );
    return { child, exited };
  });
  // A custodian process that stops early would leave the others waiting for it until they time
  // out: say at once which one stopped, and why. (A failed ceremony makes them all stop; the
  // coordinator's reason, which names the culprit, is what waitForLifecycle reports.)
  const following = new AbortController();
  const stopped = new Promise<never>((_, reject) => {
    for (const c of children)
      void c.exited.then(({ name, code, log }) => {
        if (code === 0) return;
        // Give the coordinator's failure, if any, the moment it needs to arrive first.
        setTimeout(() => {
          const last = lastLine(log);
          reject(
            new Error(
              `custodian ${name}'s ceremony process stopped (exit code ${code})${last ? `: ${last}` : ""} (log: ${log})`,
            ),
          );
        }, 2000).unref();
      });
  });
  stopped.catch(() => undefined);
  try {
    const done = await Promise.race([waitForLifecycle(client, id, following.signal, adminToken), stopped]);
    await Promise.all(children.map((c) => c.exited));
    printResult(json, done, `${lifecycleOutcome(done)}; the dev agents use their new shares`);
  } finally {
    following.abort();
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGTERM");
  }
}
