// What users run is dist/ (bin/tca.js), so the native FROST backend must load there too, not only
// under tsx: tsc's ES2022 output once bound the Point class's name after its static initialiser ran,
// and every compiled process fell back to pure JS without a word.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../helpers/processes.ts";

const SUITE = pathToFileURL(join(ROOT, "dist/threshold/suite.js")).href;

function compiledBackend(requested: string): string {
  return execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const m = await import(${JSON.stringify(SUITE)}); process.stdout.write(m.suiteBackend);`,
    ],
    { env: { ...process.env, TCA_FROST_BACKEND: requested }, encoding: "utf8" },
  );
}

describe("compiled FROST backend", () => {
  it("dist/ uses the native backend unless told otherwise", () => {
    expect(compiledBackend("")).toBe("native");
    expect(compiledBackend("noble")).toBe("noble");
  });
});
