// `tca` runs the JavaScript compiled into dist/ (test/global-setup.ts builds it),
// never the TypeScript sources, and each call imports only the command group it runs, so `tca
// --version` and `tca --help` load commander and nothing else.
import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Sandbox, ROOT, TCA_BIN } from "../helpers/processes.ts";
import { buildProgram, groupFor } from "../../src/cli/program.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());

const RECORDER = pathToFileURL(join(ROOT, "test/fixtures/record-imports.mjs")).href;
const HEAVY = [
  "express",
  "better-sqlite3",
  "@noble/",
  "@peculiar/",
  "@hpke/",
  "sodium-native",
  "pino",
  "zod",
];

/** Runs `tca ARGS` and returns its exit code, output and every module URL it resolved, in order. */
async function traced(args: string[]): Promise<{ code: number; stdout: string; imports: string[] }> {
  const log = join(sb.tempDir("tca-imports-"), "imports.log");
  const p = sb.node(["--import", RECORDER, TCA_BIN, ...args], { TCA_IMPORT_LOG: log });
  const code = await p.exited;
  return { code, stdout: p.stdout, imports: readFileSync(log, "utf8").split("\n").filter(Boolean) };
}

const packages = (imports: string[]) => imports.filter((u) => u.includes("/node_modules/"));

describe("compiled CLI", () => {
  it("bin/tca.js runs dist/, not the TypeScript sources, and --version is the package version", async () => {
    const { code, stdout, imports } = await traced(["--version"]);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(pkg.version);
    expect(imports).toContain(pathToFileURL(join(ROOT, "dist/cli/main.js")).href);
    expect(imports.filter((u) => u.endsWith(".ts") || u.includes("/tsx/"))).toEqual([]);
  });

  it("--version and --help load commander only", async () => {
    for (const args of [["--version"], ["--help"]]) {
      const { code, imports } = await traced(args);
      expect(code).toBe(0);
      const loaded = packages(imports);
      expect(loaded.length).toBeGreaterThan(0); // the recorder works: commander is seen
      expect(loaded.filter((u) => !u.includes("/node_modules/commander/"))).toEqual([]);
    }
  });

  it("a command loads its own group only; reflect-metadata comes before @peculiar/x509", async () => {
    const serve = await traced(["serve", "--help"]);
    expect(serve.code).toBe(0);
    const loaded = packages(serve.imports);
    expect(loaded.some((u) => u.includes("/node_modules/express/"))).toBe(true);
    expect(loaded.some((u) => u.includes("/node_modules/better-sqlite3/"))).toBe(true);
    const reflect = loaded.findIndex((u) => u.includes("/node_modules/reflect-metadata/"));
    const x509 = loaded.findIndex((u) => u.includes("/node_modules/@peculiar/x509/"));
    expect(reflect).toBeGreaterThanOrEqual(0);
    expect(x509).toBeGreaterThan(reflect);
    expect(serve.imports.some((u) => u.includes("/dist/cli/commands/request.js"))).toBe(false);

    // `tca request` talks HTTP to a coordinator: no server, database or FROST code.
    const request = await traced(["request", "--help"]);
    expect(request.code).toBe(0);
    const heavy = packages(request.imports).filter((u) =>
      ["express", "better-sqlite3", "@noble/", "sodium-native"].some((h) => u.includes(`/node_modules/${h}`)),
    );
    expect(heavy).toEqual([]);
    expect(request.imports.some((u) => u.includes("/dist/cli/commands/serve.js"))).toBe(false);
  });

  it("a mistyped command loads nothing heavy and suggests the right one", async () => {
    const { code, imports } = await traced(["sevre"]);
    expect(code).toBe(2);
    const loaded = packages(imports);
    expect(loaded.filter((u) => HEAVY.some((h) => u.includes(`/node_modules/${h}`)))).toEqual([]);
    const p = sb.tca(["sevre"]);
    await p.exited;
    expect(p.stderr).toMatch(/unknown command 'sevre'[\s\S]*Did you mean serve\?/);
  });

  it("without dist/ it says to build, exits non-zero and does not fall back to the sources", async () => {
    const clone = sb.tempDir("tca-nodist-");
    mkdirSync(join(clone, "bin"));
    copyFileSync(TCA_BIN, join(clone, "bin/tca.js"));
    const p = sb.node([join(clone, "bin/tca.js"), "--version"], {}, clone);
    expect(await p.exited).toBe(1);
    expect(p.stdout).toBe("");
    expect(p.stderr).toContain(join(clone, "dist/cli/main.js"));
    expect(p.stderr).toMatch(/npm install/);
    expect(p.stderr).toMatch(/npm run build/);
  });
});

describe("lazy command groups", () => {
  it("the stubs list exactly what the real command modules register", async () => {
    const lazy = await buildProgram(["node", "tca", "--help"]);
    const full = await buildProgram(["node", "tca", "--help"], true);
    expect(lazy.commands.map((c) => c.name())).toEqual(full.commands.map((c) => c.name()));
    expect(lazy.helpInformation()).toBe(full.helpInformation());
  });

  it("the group is the first word that is not an option, or the one after `help`", () => {
    expect(groupFor(["node", "tca", "--version"])).toBeUndefined();
    expect(groupFor(["node", "tca"])).toBeUndefined();
    expect(groupFor(["node", "tca", "serve", "--port", "0"])).toBe("serve");
    expect(groupFor(["node", "tca", "--help", "custodian"])).toBe("custodian");
    expect(groupFor(["node", "tca", "help", "dev"])).toBe("dev");
    expect(groupFor(["node", "tca", "help"])).toBeUndefined();
    expect(groupFor(["node", "tca", "constructor"])).toBeUndefined();
    expect(groupFor(["node", "tca", "sevre"])).toBeUndefined();
  });

  it("a named group is registered from its module (its subcommands exist), the others are stubs", async () => {
    const program = await buildProgram(["node", "tca", "custodian", "agent"]);
    const custodian = program.commands.find((c) => c.name() === "custodian");
    expect(custodian?.commands.map((c) => c.name())).toContain("agent");
    const ceremony = program.commands.find((c) => c.name() === "ceremony");
    expect(ceremony?.commands).toEqual([]);
  });
});
