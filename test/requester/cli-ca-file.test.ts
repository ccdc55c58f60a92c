// `--ca-file FILE` / `$TCA_CA_FILE` on the requester's and the admin's commands (docs/tls.md): the
// coordinator's certificate is verified against that file; without it Node's built-in roots refuse
// a private CA; a CA file that is missing or holds no PEM certificate is a usage error naming it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { closeTlsServers, makeCa, removeCertDirs, startHttps, type TestCa } from "../protocol/tls-servers.ts";

const sb = new Sandbox();
let ca: TestCa;
let dir: string;
let token: string;
let caFile: string;
/** No $TCA_CA_FILE from the environment the tests run in; an admin token for `tca ceremony`. */
const NO_ENV = { TCA_CA_FILE: "", TCA_COORDINATOR: "", TCA_ADMIN_TOKEN: "admin-token" };

beforeAll(() => {
  ca = makeCa("tca cli test root");
  dir = sb.tempDir();
  token = join(dir, "token");
  writeFileSync(token, "t\n");
  caFile = join(dir, "root.pem");
  writeFileSync(caFile, ca.certPem);
});
afterEach(closeTlsServers);
afterAll(() => {
  removeCertDirs();
  sb.cleanup();
});

const ceremony = {
  id: "c1",
  status: "complete",
  failure: null,
  received: {},
  announcement: { threshold: 2, custodians: [{ name: "alice" }, { name: "bob" }] },
};

function request(args: string[], env: NodeJS.ProcessEnv = {}) {
  return sb.tca(
    [
      "request",
      "svc.example.internal",
      "--token-file",
      token,
      "--no-wait",
      "--key-out",
      join(dir, "k"),
      ...args,
    ],
    { ...NO_ENV, ...env },
  );
}

describe("a CA file that cannot be used is a usage error naming it", () => {
  it("tca request --ca-file missing.pem", async () => {
    const missing = join(dir, "missing.pem");
    const p = request(["--ca-file", missing, "--coordinator", "https://127.0.0.1:1"]);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toContain(`--ca-file: cannot read ${missing}: no such file`);
  });

  it("tca request --ca-file with a file that holds no certificate", async () => {
    const key = join(dir, "not-a-cert.pem");
    writeFileSync(key, "just some text\n");
    const p = request(["--ca-file", key, "--coordinator", "https://127.0.0.1:1"]);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toContain(`--ca-file: ${key} holds no PEM certificate`);
  });

  it("a missing $TCA_CA_FILE is named as such; tca ceremony status checks --ca-file the same way", async () => {
    const missing = join(dir, "gone.pem");
    const p = request(["--coordinator", "https://127.0.0.1:1"], { TCA_CA_FILE: missing });
    expect(await p.exited).toBe(2);
    expect(p.stderr).toContain(`$TCA_CA_FILE: cannot read ${missing}: no such file`);
    const c = sb.tca(
      ["ceremony", "status", "--coordinator", "https://127.0.0.1:1", "--ca-file", missing],
      NO_ENV,
    );
    expect(await c.exited).toBe(2);
    expect(c.stderr).toContain(`--ca-file: cannot read ${missing}`);
  });
});

describe("https:// coordinators from the command line", () => {
  it("tca request submits over TLS verified against --ca-file; without it the private CA is refused and nothing is sent", async () => {
    const server = await startHttps(ca.issue(), (_req, res) => {
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "r1", status: "pending" }));
    });
    const refused = request(["--coordinator", server.url, "--force"]);
    expect(await refused.exited).toBe(4);
    expect(refused.stderr).toMatch(
      /the coordinator's TLS certificate was refused \(.+\): it must chain to the CA root this client trusts — pass --ca-file or set TCA_CA_FILE/,
    );
    expect(server.hits).toEqual([]);

    const viaFlag = request(["--coordinator", server.url, "--ca-file", caFile, "--force"]);
    expect(await viaFlag.exited, viaFlag.stderr).toBe(0);
    expect(viaFlag.stdout.trim()).toBe("r1");
    const viaEnv = request(["--coordinator", server.url, "--force"], { TCA_CA_FILE: caFile });
    expect(await viaEnv.exited, viaEnv.stderr).toBe(0);
    expect(server.hits.map((h) => `${h.method} ${h.url} ${h.encrypted}`)).toEqual([
      "POST /api/v1/requests true",
      "POST /api/v1/requests true",
    ]);
  });

  it("tca ceremony status verifies against --ca-file", async () => {
    const server = await startHttps(ca.issue(), (req, res) => {
      // No refresh, reshare or repair has run (`status` without an id asks for both).
      const lifecycle = req.url?.startsWith("/api/v1/lifecycle/");
      res.writeHead(lifecycle ? 404 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify(lifecycle ? { status: 404, detail: "no lifecycle ceremony" } : ceremony));
    });
    const p = sb.tca(["ceremony", "status", "--coordinator", server.url, "--ca-file", caFile], NO_ENV);
    expect(await p.exited, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/ceremony c1: complete/);
    const q = sb.tca(["ceremony", "status", "--coordinator", server.url], NO_ENV);
    expect(await q.exited).toBe(4);
    expect(q.stderr).toMatch(/TLS certificate was refused/);
  });
});
