// A CLI that fails well: each failure of the list, run as a real `bin/tca.js` process,
// exits with the README's code (0 ok, 1 failed, 2 usage, 3 refused, 4 unreachable) and says what
// happened and what to do in one line of stderr. Most cases need no server; the rest share one dev
// CA without agents (so requests stay pending until someone acts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:net";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, Sandbox, type Proc } from "../helpers/processes.ts";
import { custodianCli, makeCsr, startDevCa, submitCsr, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let work: string;
let csr: string;
let busy: Server;
let busyPort: number;
let closedPort: number;

async function listen(): Promise<Server> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => res(s));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

beforeAll(async () => {
  work = sb.tempDir("tca-fail-");
  csr = makeCsr(work, "svc", {
    newkey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    subject: "/CN=svc.example.internal",
    sans: "DNS:svc.example.internal",
  }).csr;
  writeFileSync(join(work, "not-a-csr.txt"), "hello\n");
  writeFileSync(join(work, "token"), "some-token\n");
  busy = await listen();
  busyPort = portOf(busy);
  const closed = await listen();
  closedPort = portOf(closed);
  await new Promise((r) => closed.close(r));
});
afterAll(async () => {
  busy?.close();
  await sb.cleanup();
});

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc & { code: number }> {
  const p = sb.tca(args, { TCA_COORDINATOR: "", TCA_TOKEN: "", TCA_ADMIN_TOKEN: "", ...env }, work);
  const code = await p.exited;
  return Object.assign(p, { code });
}

/** The one line of stderr an error prints. */
function oneErrorLine(p: Proc): string {
  const lines = p.stderr.trim().split("\n");
  expect(lines, p.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tca: error: /);
  return lines[0]!;
}

interface Case {
  what: string;
  args: () => string[];
  env?: () => NodeJS.ProcessEnv;
  code: number;
  /** What the line says; {busy} and {closed} stand for the test's ports. */
  says: string[];
  never?: string[];
}

const tokenFile = () => join(work, "token");
const CASES: Case[] = [
  {
    what: "an unknown option is a usage error in one line",
    args: () => ["request", "a.example", "--bogus"],
    code: 2,
    says: ["unknown option '--bogus'", "--help"],
    never: ["Usage:"],
  },
  {
    what: "an unknown command is a usage error",
    args: () => ["custodian", "bogus"],
    code: 2,
    says: ["unknown command 'bogus'"],
  },
  {
    what: "a missing argument is a usage error",
    args: () => ["request"],
    code: 2,
    says: ["missing required argument 'name'"],
  },
  {
    what: "reject without --reason is a usage error",
    args: () => ["custodian", "reject", "some-id"],
    code: 2,
    says: ["--reason"],
  },
  {
    what: "a bad --status is a usage error naming the valid ones",
    args: () => ["custodian", "requests", "--status", "bogus"],
    code: 2,
    says: ['"bogus"', "pending, signing, issued, rejected, failed, all"],
  },
  {
    what: "a CSR file that is not a CSR: our message naming the file",
    args: () => ["request", "svc.example.internal", "--csr", "not-a-csr.txt", "--token-file", tokenFile()],
    code: 2,
    says: ["not-a-csr.txt", "neither DER nor a PEM block", "PKCS#10"],
    never: ["Base4Url", "Base64"],
  },
  {
    what: "a private key given as the CSR says what it is",
    args: () => ["request", "svc.example.internal", "--csr", "svc.key", "--token-file", tokenFile()],
    code: 2,
    says: ["svc.key", "PRIVATE KEY"],
  },
  {
    what: "a name the CSR does not hold is a usage error naming both",
    args: () => ["request", "other.example", "--csr", csr, "--token-file", tokenFile()],
    code: 2,
    says: ['"other.example"', "CN=svc.example.internal", "DNS:svc.example.internal"],
  },
  {
    what: "no requester token",
    args: () => ["request", "svc.example.internal", "--coordinator", `http://127.0.0.1:${closedPort}`],
    code: 2,
    says: ["--token-file", "$TCA_TOKEN"],
  },
  {
    what: "a token file that does not exist",
    args: () => [
      "ceremony",
      "status",
      "--token-file",
      "missing.token",
      "--coordinator",
      "http://127.0.0.1:1",
    ],
    code: 2,
    says: ["--token-file", "missing.token", "ENOENT"],
  },
  {
    what: "connection refused: the URL, the cause, what to check (tca request)",
    args: () => ["request", "a.example", "--coordinator", `http://127.0.0.1:${closedPort}`],
    env: () => ({ TCA_TOKEN: "t" }),
    code: 4,
    says: [
      "cannot reach the coordinator (tried http://127.0.0.1:{closed})",
      "connection refused",
      "--coordinator",
    ],
  },
  {
    what: "connection refused, the same way from tca ceremony, which reads $TCA_COORDINATOR",
    args: () => ["ceremony", "status"],
    env: () => ({ TCA_COORDINATOR: `http://127.0.0.1:${closedPort}`, TCA_ADMIN_TOKEN: "t" }),
    code: 4,
    says: ["cannot reach the coordinator (tried http://127.0.0.1:{closed})", "connection refused"],
    never: ["[COORDINATOR_UNREACHABLE]"],
  },
  {
    what: "fetch's blocked port is unreachable too (exit 4), not a crash",
    args: () => ["request", "a.example", "--coordinator", "http://127.0.0.1:1", "--token-file", tokenFile()],
    code: 4,
    says: ["cannot reach the coordinator (tried http://127.0.0.1:1)", "bad port", "another port"],
  },
  {
    what: "an unknown host name says DNS",
    args: () => [
      "request",
      "a.example",
      "--coordinator",
      "https://tca.invalid:8443",
      "--token-file",
      tokenFile(),
    ],
    code: 4,
    says: ["cannot reach the coordinator (tried https://tca.invalid:8443)", "DNS"],
  },
  {
    what: "a token is never sent in clear to an http:// URL off this host (usage error, nothing sent)",
    args: () => [
      "request",
      "a.example",
      "--coordinator",
      "http://tca.invalid:8443",
      "--token-file",
      tokenFile(),
    ],
    code: 2,
    says: [
      "refusing to send the token in clear to http://tca.invalid:8443",
      "https://",
      "TCA_ALLOW_PLAIN_HTTP",
    ],
    never: ["cannot reach"],
  },
  {
    what: "the admin token neither",
    args: () => ["ceremony", "status", "--coordinator", "http://tca.invalid:8443"],
    env: () => ({ TCA_ADMIN_TOKEN: "admin-token-0123456789abcdef" }),
    code: 2,
    says: ["refusing to send the token in clear to http://tca.invalid:8443"],
  },
  {
    what: "tca serve on a busy port",
    args: () => ["serve", "--config", join(ROOT, "ca-config/ca.yaml"), "--port", String(busyPort)],
    code: 1,
    says: ["127.0.0.1:{busy}", "in use", "--port"],
    never: ["Cannot destructure"],
  },
  {
    what: "tca dev on a busy port, before it writes anything",
    args: () => ["dev", "--dir", "busy-ca", "--port", String(busyPort)],
    code: 1,
    says: ["port {busy} is in use", "--port"],
    never: ["Cannot destructure", "creating"],
  },
  {
    what: "npm start --reset (npm kept the flag) tells how to pass it",
    args: () => ["dev", "--dir", "npm-ca"],
    env: () => ({ npm_lifecycle_event: "start", npm_config_reset: "true" }),
    code: 2,
    says: ["npm start -- --reset"],
  },
];

describe("a CLI that fails well: exit code and one line naming what to do", () => {
  it.each(CASES.map((c) => [c.what, c] as const))("%s", async (_, c) => {
    const p = await run(c.args(), c.env?.() ?? {});
    expect(p.code, p.output).toBe(c.code);
    const line = oneErrorLine(p);
    const fill = (s: string) =>
      s.replaceAll("{busy}", String(busyPort)).replaceAll("{closed}", String(closedPort));
    for (const s of c.says) expect(line).toContain(fill(s));
    for (const s of c.never ?? []) expect(p.output).not.toContain(s);
  });

  it("dev without a port change writes nothing on a busy port", () => {
    expect(existsSync(join(work, "busy-ca", "ca-config.yaml"))).toBe(false);
  });
});

describe("help", () => {
  it("--home prints its default once; reject --reason is marked required", async () => {
    const p = await run(["custodian", "reject", "--help"]);
    expect(p.code).toBe(0);
    const help = p.stdout.replace(/\s+/g, " ");
    const home = help.slice(help.indexOf("--home"), help.indexOf("--coordinator"));
    expect(home.match(/default/g)).toHaveLength(1);
    expect(home).toContain("$TCA_HOME or ~/.tca/custodian");
    expect(help).toMatch(/--reason <text> \(required\)/);
  });
});

describe("with a dev CA without agents", () => {
  let ca: DevCa;
  beforeAll(async () => {
    ca = await startDevCa(sb);
  }, 120_000);

  it("the banner offers no curl block that cannot work, and says how to approve", () => {
    expect(ca.proc.stdout).not.toContain("Try it (another terminal):\n  TOKEN=");
    expect(ca.proc.stdout).toContain("No agents");
    expect(ca.proc.stdout).toMatch(/tca\.js custodian approve ID --home \S+alice/);
  });

  it("request --no-wait ends with the exact command that fetches the chain", async () => {
    const p = await run(
      ["request", "svc.example.internal", "--csr", csr, "--no-wait", "--coordinator", ca.url],
      {
        TCA_TOKEN: ca.token,
      },
    );
    expect(p.code, p.output).toBe(0);
    const id = p.stdout.trim();
    expect(p.stderr).toContain(
      `curl -sf -H "Authorization: Bearer $TCA_TOKEN" "${ca.url}/api/v1/requests/${id}/certificate?wait=60" -o `,
    );
    expect(p.stderr).not.toMatch(/ \/api\/v1/);
  });

  it("approving a request already rejected exits 3, saying so in one line", async () => {
    const sub = await submitCsr(ca, readFileSync(csr, "utf8"));
    const id = String(sub.body.id);
    const rej = custodianCli(sb, ca, "alice", ["reject", id, "--reason", "not today"]);
    expect(await rej.exited, rej.output).toBe(0);
    const p = custodianCli(sb, ca, "bob", ["approve", id, "--yes"]);
    expect(await p.exited, p.output).toBe(3);
    const last = p.stderr.trim().split("\n").at(-1)!;
    expect(last).toBe(`tca: error: cannot approve request ${id}: it is already rejected`);
  });

  it("Ctrl-C while waiting says what it stopped and how to follow up, and exits 130", async () => {
    const p = sb.tca(
      [
        "request",
        "wait.example.internal",
        "--coordinator",
        ca.url,
        "--token-file",
        join(ca.dir, "requester.token"),
      ],
      {},
      work,
    );
    await p.waitFor(/pending: 0 of 2 approvals/);
    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
    const last = p.stderr.trim().split("\n").at(-1)!;
    expect(last).toMatch(
      /^tca: stopped waiting for request [0-9a-f-]{36}; it is still pending — fetch the chain/,
    );
    expect(last).toContain("/certificate?wait=60");
  });
});
