// `tca dev` state directory: a lock stops a second tca dev on the same --dir, and a
// --reset of a running one, naming the PID that holds it; a stale lock (its PID gone) is taken
// over; a first start that fails leaves nothing half-made behind, and one that was killed before
// its ceremony completed is cleaned up by the next start.
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import {
  acquireDevLock,
  createLocalCa,
  DEV_LOCK,
  DevLockError,
  finishLocalCa,
  localCaHalfMade,
  startLocalCa,
} from "../../src/dev/local-ca.ts";
import { Sandbox } from "../helpers/processes.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());

/** A PID that belonged to a process that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!;

describe("the tca dev lock", () => {
  it("a second holder is refused with the PID; a stale lock is taken over; release removes it", () => {
    const dir = join(sb.tempDir("tca-dev-lock-"), "state");
    const lock = acquireDevLock(dir);
    expect(readFileSync(join(dir, DEV_LOCK), "utf8").trim()).toBe(String(process.pid));
    expect(() => acquireDevLock(dir)).toThrow(DevLockError);
    expect(() => acquireDevLock(dir)).toThrow(
      new RegExp(`another tca dev \\(PID ${process.pid}\\) is using`),
    );
    lock.release();
    expect(existsSync(join(dir, DEV_LOCK))).toBe(false);

    const dead = deadPid();
    writeFileSync(join(dir, DEV_LOCK), `${dead}\n`);
    const again = acquireDevLock(dir); // stale: taken over
    expect(readFileSync(join(dir, DEV_LOCK), "utf8").trim()).toBe(String(process.pid));
    again.release();
  });

  it("tca dev and tca dev --reset refuse a directory another tca dev holds, and change nothing", async () => {
    const dir = join(sb.tempDir("tca-dev-lock-cli-"), "state");
    const lock = acquireDevLock(dir); // this test process plays the running tca dev
    writeFileSync(join(dir, "ca-config.yaml"), "# stands for a running CA's state\n");
    try {
      for (const args of [[], ["--reset"]]) {
        const p = sb.tca(["dev", "--dir", dir, "--port", "0", ...args]);
        expect(await p.exited, p.output).not.toBe(0);
        expect(p.stderr).toMatch(new RegExp(`another tca dev \\(PID ${process.pid}\\) is using ${dir}`));
        if (args.length) expect(p.stderr).toMatch(/--reset refused/);
        expect(readdirSync(dir).sort()).toEqual(["ca-config.yaml", DEV_LOCK]);
      }
    } finally {
      lock.release();
    }
  });
});

describe("a failed first start", () => {
  const busyPort = async (): Promise<{ server: Server; port: number }> => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, port: (server.address() as { port: number }).port };
  };

  it("leaves nothing half-made behind (here: the port is taken), and releases its lock", async () => {
    const dir = join(sb.tempDir("tca-dev-fail-"), "state");
    const { server, port } = await busyPort();
    try {
      const p = sb.tca(["dev", "--dir", dir, "--port", String(port), "--no-agents"]);
      expect(await p.exited, p.output).not.toBe(0);
      // The port is checked before anything is written: one line, and nothing to clean up.
      expect(p.stderr).toMatch(new RegExp(`port ${port} is in use.*pass --port`));
      // No config, identities, tokens or database: the next start begins from nothing.
      expect(existsSync(dir) ? readdirSync(dir).filter((e) => e !== "logs" && e !== DEV_LOCK) : []).toEqual(
        [],
      );
    } finally {
      server.close();
    }
  });

  it("a first start killed before its ceremony completed is cleaned up by the next start", async () => {
    const dir = join(sb.tempDir("tca-dev-killed-"), "state");
    startLocalCa(dir);
    await createLocalCa({ dir, custodians: 2, threshold: 2, publicUrl: "http://127.0.0.1:1" });
    writeFileSync(join(dir, "coordinator.db"), ""); // as localCaExists would see a made CA
    writeFileSync(join(dir, DEV_LOCK), `${deadPid()}\n`); // its maker was SIGKILLed
    expect(localCaHalfMade(dir)).toBe(true);
    const { server, port } = await busyPort(); // stop the new start right after its clean-up
    try {
      const p = sb.tca(["dev", "--dir", dir, "--port", String(port), "--no-agents"]);
      expect(await p.exited, p.output).not.toBe(0);
      expect(p.stderr).toMatch(/removing the half-made dev CA/); // not "reusing" it
      expect(p.stderr).toMatch(new RegExp(`port ${port} is in use`));
    } finally {
      server.close();
    }
    expect(readdirSync(dir).filter((e) => e !== "logs")).toEqual([]); // the half-made CA is gone
    startLocalCa(dir);
    finishLocalCa(dir); // what a completed first start does
    expect(localCaHalfMade(dir)).toBe(false);
  });
});
