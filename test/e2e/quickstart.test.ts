// The README's quick start, as written. `npm start` is `node bin/tca.js dev`
// (see package.json); it runs here in a temp directory on a free port instead of 8443, and the
// README's shell block runs unchanged except for that port.
import { afterAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { Sandbox, ROOT } from "../helpers/processes.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());

/** The README's quick-start blocks, in order: the CLI one, then the same over HTTP. */
function quickstartBlocks(): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [
    ...readme.matchAll(
      /<!-- quickstart(?:-http)?:begin -->\s*```sh\n([\s\S]+?)```\s*<!-- quickstart(?:-http)?:end -->/g,
    ),
  ].map((m) => m[1]!);
  if (blocks.length !== 2) throw new Error(`README.md has ${blocks.length} quickstart blocks, expected 2`);
  return blocks;
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

describe("README quick start", () => {
  it("package.json's start script is the dev CA the README describes", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe("node bin/tca.js dev");
    expect(pkg.scripts.test).toBe("vitest run");
  });

  it("start the dev CA, request a certificate with tca request and with curl, verify both with openssl", async () => {
    const cwd = sb.tempDir("tca-quickstart-");
    // The README runs from the checkout, where ./bin/tca.js is: the same here, by a link.
    symlinkSync(join(ROOT, "bin"), join(cwd, "bin"));
    const port = await freePort();
    const dev = sb.tca(["dev", "--port", String(port)], {}, cwd);
    await dev.waitFor(/tca dev: ready/, 110_000);
    const [cli, http] = quickstartBlocks().map((b) => b.replaceAll("8443", String(port)));
    expect(cli).toContain("openssl verify -CAfile root.pem svc.example.internal.crt");
    expect(http).toContain("openssl verify -CAfile root.pem svc.pem");
    const run = async (script: string) =>
      (await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], { cwd, timeout: 90_000 }))
        .stdout;
    const cliOut = await run(cli!);
    expect(cliOut).toMatch(/^svc\.example\.internal\.crt: OK$/m);
    expect(cliOut).toMatch(/svc\.example\.internal\s+valid/); // the inventory lists it
    const stdout = await run(http!);
    expect(stdout).toMatch(/^svc\.pem: OK$/m);
    // The agents approved it; no person was involved.
    const id = (JSON.parse(readFileSync(join(cwd, "request.json"), "utf8")) as { id: string }).id;
    const token = readFileSync(join(cwd, ".tca-dev/requester.token"), "utf8").trim();
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/requests/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const view = (await res.json()) as {
      status: string;
      approvals: unknown[];
    };
    expect(view.status).toBe("issued");
    expect(view.approvals.length).toBeGreaterThanOrEqual(2); // all three agents may approve; two sign
    // The next start reuses the same CA.
    dev.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
    const again = sb.tca(["dev"], {}, cwd);
    await again.waitFor(/tca dev: ready/, 110_000);
    expect(again.stderr).toMatch(/reusing the dev CA/);
    const root = await (await fetch(`http://127.0.0.1:${port}/ca.pem`)).text();
    expect(root).toBe(readFileSync(join(cwd, "root.pem"), "utf8"));
    again.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  });
});
