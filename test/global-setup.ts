// Vitest globalSetup: builds dist/ from the current sources once before the suite (and again before
// each watch-mode rerun). The end-to-end tests spawn bin/tca.js, which runs the compiled JavaScript,
// so they test what users run after `npm install` (tsc's emitted imports, module loading order, the
// lazy command loading) and never a stale dist/. `tsc -b --noCheck` emits exactly what the checked
// build emits, without type checking (that is `npm run typecheck`'s job, and it used to be skipped
// by tsx as well); incremental, it takes well under a second when nothing changed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { startSharedPostgres } from "./helpers/postgres.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TSC = createRequire(import.meta.url).resolve("typescript/bin/tsc");

/** Emits dist/; a syntax or configuration error fails the run. */
export function buildDist(): void {
  const args = [TSC, "-b", "tsconfig.build.json", "--noCheck", "--pretty", "false"];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0 || !existsSync(join(ROOT, "dist/cli/main.js"))) {
    throw new Error(
      `building dist/ failed (tsc -b tsconfig.build.json --noCheck: status ${r.status}):\n${r.stdout}${r.stderr}`,
    );
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildDist();
  project.onTestsRerun(() => buildDist());
  // One throwaway PostgreSQL server for the whole run; each test file creates its own database on
  // it (test/helpers/postgres.ts). Null only outside CI when PostgreSQL is not installed.
  const pg = await startSharedPostgres();
  project.provide("pgAdminUrl", pg?.url ?? null);
  return async () => {
    await pg?.stop();
  };
}
