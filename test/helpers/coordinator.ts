// An in-process coordinator on loopback (port 0) over a throwaway SQLite file, for tests of its
// HTTP surface. Registers its own set-up and tear-down; read `.url` inside tests.
import { afterAll, beforeAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { loadCaConfig } from "../../src/config/load.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";

const EXAMPLE_CONFIG = new URL("../../ca-config/ca.yaml", import.meta.url).pathname;

export function useCoordinator(prefix: string): { readonly url: string } {
  let dir: string;
  let coordinator: RunningCoordinator | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    coordinator = await startCoordinator({
      config: loadCaConfig(EXAMPLE_CONFIG),
      database: join(dir, "coordinator.db"),
      port: 0,
      logger: pino({ level: "silent" }),
    });
  });
  afterAll(async () => {
    await coordinator?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get url() {
      if (!coordinator) throw new Error("the coordinator is not started yet");
      return coordinator.url;
    },
  };
}
