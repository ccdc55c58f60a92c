// `tca init` with real processes: three `tca custodian init` homes, `tca init` with their entries
// and t = 2, then `tca serve` on that config, the key ceremony (`tca ceremony start` with the admin
// token init wrote, `tca custodian dkg` ×3) and a first certificate by `tca request` with the
// requester token init wrote, approved by two custodians. Also: a config with placeholders that
// `tca serve` refuses clearly, usage errors with exit code 2, and the coordinator requester that
// `tca serve --tls auto` accepts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, type Proc } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";

const sb = new Sandbox();
const PASS = "init test passphrase";
const NAMES = ["alice", "bob", "carol"] as const;
let base: string;
const homes: Record<string, string> = {};
const entryFiles: Record<string, string> = {};

async function done(p: Proc): Promise<Proc> {
  await p.exited;
  return p;
}

beforeAll(async () => {
  base = sb.tempDir("tca-init-e2e-");
  // Each custodian makes its identity, as on its own machine; alice and bob keep the text output,
  // carol the --json one.
  await Promise.all(
    NAMES.map(async (name) => {
      homes[name] = join(base, "homes", name);
      const json = name === "carol";
      const p = await done(
        sb.tca(["custodian", "init", "--home", homes[name], "--name", name, ...(json ? ["--json"] : [])], {
          TCA_PASSPHRASE: PASS,
        }),
      );
      expect(p.child.exitCode, p.stderr).toBe(0);
      entryFiles[name] = join(base, `${name}.entry`);
      writeFileSync(entryFiles[name], p.stdout);
    }),
  );
}, 60_000);
afterAll(() => sb.cleanup());

describe("tca init", () => {
  it("usage errors exit 2 with one line naming the problem; nothing is written", async () => {
    const dir = join(base, "bad");
    const cases: [string[], RegExp][] = [
      [
        ["--ca-name", "X", "--custodians", "alice,bob,carol", "--threshold", "1"],
        /threshold 1 would let any one custodian sign alone/,
      ],
      [
        ["--ca-name", "X", "--custodians", "alice,bob", "--threshold", "3"],
        /threshold 3: must be from 2 to the 2 custodians/,
      ],
      [
        ["--custodians", "alice,bob"],
        /--ca-name, --threshold required when tca init does not run on a terminal/,
      ],
      [
        ["--ca-name", "X", "--custodians", "alice,bob", "--threshold", "2", "--profiles", "web"],
        /unknown profile "web"/,
      ],
      [
        [
          "--ca-name",
          "X",
          "--custodians",
          "alice,bob",
          "--threshold",
          "2",
          "--custodian-entry",
          entryFiles.carol!,
        ],
        /entry for "carol" names no custodian/,
      ],
    ];
    for (const [args, re] of cases) {
      const p = await done(sb.tca(["init", "--dir", dir, ...args]));
      expect(p.child.exitCode, p.output).toBe(2);
      expect(p.stderr).toMatch(re);
      expect(p.stderr.trim().split("\n")).toHaveLength(1);
      expect(p.stdout).toBe("");
    }
    expect(() => statSync(dir)).toThrow();
  });

  it("placeholders: tca serve refuses the file, naming who is missing and what to do", async () => {
    const dir = join(base, "partial");
    const init = await done(
      sb.tca([
        "init",
        "--dir",
        dir,
        "--ca-name",
        "Partial Root",
        "--custodians",
        "alice,bob,carol",
        "--custodian-entry",
        entryFiles.alice!,
        "--threshold",
        "2",
      ]),
    );
    expect(init.child.exitCode, init.output).toBe(0);
    expect(init.stdout).toMatch(/NOT READY: bob, carol are placeholders/);
    expect(init.stdout).toMatch(/tca custodian init --home ~\/\.tca\/custodian --name bob/);
    // The admin token is printed once; only its hash is in the file.
    const token = /admin admin: (\S+)/.exec(init.stdout)![1]!;
    expect(readFileSync(join(dir, "ca.yaml"), "utf8")).not.toContain(token);

    const serve = await done(
      sb.tca(["serve", "--config", join(dir, "ca.yaml"), "--db", join(base, "p.db"), "--port", "0"]),
    );
    expect(serve.child.exitCode).toBe(2);
    expect(serve.stderr).toMatch(
      /roster entries of bob, carol are still placeholders: run `tca custodian init`/,
    );

    const again = await done(
      sb.tca(["init", "--dir", dir, "--ca-name", "X", "--custodians", "alice,bob", "--threshold", "2"]),
    );
    expect(again.child.exitCode).toBe(2);
    expect(again.stderr).toMatch(/ca\.yaml already exists; pass --force to overwrite/);
  });

  it("a config from tca init runs a ceremony and issues a first certificate with the token it made", async () => {
    const dir = join(base, "ca-config");
    const tokens = join(base, "tokens");
    const init = await done(
      sb.tca([
        "init",
        "--dir",
        dir,
        "--ca-name",
        "Init Test Root CA",
        "--ca-org",
        "Example",
        "--custodians",
        "alice,bob,carol",
        ...NAMES.flatMap((n) => ["--custodian-entry", entryFiles[n]!]),
        "--threshold",
        "2",
        "--profiles",
        "server,client",
        "--domain",
        "example.internal",
        "--requester",
        "svc",
        "--tls-name",
        "127.0.0.1",
        "--token-dir",
        tokens,
        "--json",
      ]),
    );
    expect(init.child.exitCode, init.output).toBe(0);
    const out = JSON.parse(init.stdout) as {
      configPath: string;
      ready: boolean;
      digest: string;
      tokens: { role: string; name: string; file: string }[];
      nextSteps: { what: string; commands: string[] }[];
    };
    const config = join(dir, "ca.yaml");
    expect(out).toMatchObject({ configPath: config, ready: true });
    expect(out.digest).toMatch(/^[0-9a-f]{64}$/);
    const adminTokenFile = join(tokens, "admin-admin.token");
    const reqTokenFile = join(tokens, "requester-svc.token");
    expect(out.tokens).toEqual([
      { role: "admin", name: "admin", file: adminTokenFile },
      { role: "requester", name: "svc", file: reqTokenFile },
    ]);
    for (const f of [adminTokenFile, reqTokenFile]) expect(statSync(f).mode & 0o777).toBe(0o600);
    const commands = out.nextSteps.flatMap((s) => s.commands).join("\n");
    expect(commands).toContain(`tca serve --config ${config} --db tca.db --tls auto --tls-name 127.0.0.1`);
    expect(commands).toContain(`TCA_ADMIN_TOKEN=$(cat ${adminTokenFile}) tca ceremony start`);
    expect(commands).toContain(`tca custodian dkg --home ~/.tca/custodian`);
    expect(commands).toContain(`--token-file ${reqTokenFile}`);

    // `tca serve --tls auto` accepts the coordinator requester init wrote for --tls-name.
    const auto = sb.tca([
      "serve",
      "--config",
      config,
      "--db",
      join(base, "auto.db"),
      "--port",
      "0",
      "--tls",
      "auto",
      "--tls-name",
      "127.0.0.1",
    ]);
    await auto.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
    auto.kill("SIGTERM");
    await auto.exited;

    // Distribute the config, serve it, run the ceremony.
    for (const n of NAMES) cpSync(config, join(homes[n]!, "ca-config.yaml"));
    const { url } = await sb.serve(config, join(base, "coordinator.db"));
    const adminToken = readFileSync(adminTokenFile, "utf8").trim();
    const start = await done(
      sb.tca(["ceremony", "start", "--coordinator", url, "--json"], { TCA_ADMIN_TOKEN: adminToken }),
    );
    expect(start.child.exitCode, start.output).toBe(0);
    const dkg = await Promise.all(
      NAMES.map((n) =>
        done(
          sb.tca(["custodian", "dkg", "--home", homes[n]!, "--coordinator", url], { TCA_PASSPHRASE: PASS }),
        ),
      ),
    );
    expect(
      dkg.map((p) => p.child.exitCode),
      dkg.map((p) => p.stderr).join("\n"),
    ).toEqual([0, 0, 0]);
    const rootPath = join(base, "root.pem");
    writeFileSync(rootPath, await (await fetch(`${url}/ca.pem`)).text());
    expect(openssl(["x509", "-in", rootPath, "-noout", "-subject"])).toMatch(
      /CN\s*=\s*Init Test Root CA, O\s*=\s*Example/,
    );

    // A first certificate with the requester token init wrote, approved by alice and bob.
    const certDir = sb.tempDir("tca-init-cert-");
    const name = "svc.example.internal";
    const req = sb.tca([
      "request",
      name,
      "--coordinator",
      url,
      "--token-file",
      reqTokenFile,
      "--key-out",
      join(certDir, "svc.key"),
      "--cert-out",
      join(certDir, "svc.crt"),
      "--chain-out",
      join(certDir, "svc.chain.pem"),
      "--json",
    ]);
    const id = (await req.waitFor(/request ([0-9a-f-]{36}) submitted/, 30_000))[1]!;
    const approvers = ["alice", "bob"].map((n) =>
      sb.tca(["custodian", "approve", id, "--yes", "--home", homes[n]!, "--coordinator", url], {
        TCA_PASSPHRASE: PASS,
      }),
    );
    expect(await req.exited, req.output).toBe(0);
    for (const a of approvers) expect(await a.exited, a.output).toBe(0);
    const crt = join(certDir, "svc.crt");
    expect(openssl(["verify", "-x509_strict", "-CAfile", rootPath, crt])).toMatch(/: OK/);
    const text = openssl(["x509", "-in", crt, "-noout", "-text"]);
    expect(text).toMatch(/DNS:svc\.example\.internal/);
    expect(text).toMatch(/TLS Web Server Authentication/);

    // The grant init wrote holds: a name outside --domain is refused by the coordinator.
    const outside = await done(
      sb.tca([
        "request",
        "svc.other.test",
        "--coordinator",
        url,
        "--token-file",
        reqTokenFile,
        "--key-out",
        join(certDir, "o.key"),
        "--cert-out",
        join(certDir, "o.crt"),
        "--chain-out",
        join(certDir, "o.chain.pem"),
        "--no-wait",
      ]),
    );
    expect(outside.child.exitCode).not.toBe(0);
    expect(outside.stderr).toMatch(/svc\.other\.test/);
  }, 120_000);
});
