// Real OS processes for end-to-end tests: spawn, read their output, wait for lines or exit, and
// make sure nothing outlives the test file.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Runs the compiled dist/, which test/global-setup.ts builds from the current sources first. */
export const TCA_BIN = join(ROOT, "bin/tca.js");
export const FIXTURE_PASSPHRASE = "fixture passphrase";
export const EXAMPLE_ADMIN_TOKEN = "example-admin-token-change-me";
export const EXAMPLE_REQUESTER_TOKEN = "example-requester-token-change-me";

export class Proc {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on("data", (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) => child.on("exit", (code, signal) => res(code ?? (signal ? 128 : 1))));
  }
  get output(): string {
    return this.stdout + this.stderr;
  }
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(re);
      if (m) return m;
      if (this.child.exitCode !== null)
        throw new Error(`process exited (${this.child.exitCode}) before printing ${re}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Tracks processes and temp dirs of one test file; `cleanup()` goes in afterAll. */
export class Sandbox {
  readonly procs: Proc[] = [];
  readonly dirs: string[] = [];

  tempDir(prefix = "tca-test-"): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  tca(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Proc {
    return this.node([TCA_BIN, ...args], env, cwd);
  }

  /** Any program (lego, certbot, openssl …), tracked like tca's own processes. */
  program(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Proc {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new Proc(child);
    this.procs.push(p);
    return p;
  }

  node(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Proc {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, TCA_LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new Proc(child);
    this.procs.push(p);
    return p;
  }

  /** Starts `tca serve` on a free port and returns its URL. */
  async serve(
    configPath: string,
    dbPath: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ url: string; proc: Proc }> {
    const proc = this.tca(["serve", "--config", configPath, "--db", dbPath, "--port", "0"], env);
    const m = await proc.waitFor(/listening on (http:\/\/\S+)/);
    return { url: m[1]!, proc };
  }

  /** Copies the committed fixture custodian homes (alice, bob, carol) into a temp dir. */
  fixtureHomes(configPath: string): Record<"alice" | "bob" | "carol", string> {
    const base = this.tempDir("tca-homes-");
    const out = {} as Record<"alice" | "bob" | "carol", string>;
    for (const name of ["alice", "bob", "carol"] as const) {
      const home = join(base, name);
      cpSync(join(ROOT, "test/fixtures/custodians", name), home, { recursive: true });
      cpSync(configPath, join(home, "ca-config.yaml"));
      out[name] = home;
    }
    return out;
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.all(this.procs.map((p) => p.exited));
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}
