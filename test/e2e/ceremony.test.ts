// The key ceremony (docs/architecture.md §5) with real processes over loopback — `tca serve`, `tca ceremony
// start`, one `tca custodian dkg` process per custodian with its own home — produce a root openssl accepts.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, ROOT, FIXTURE_PASSPHRASE, EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { readKeystore } from "../../src/custodian/keystore.ts";
import { KeyShareSchema } from "../../src/custodian/home.ts";
import { createLocalCa } from "../../src/dev/local-ca.ts";
import { createServer, type AddressInfo } from "node:net";

const sb = new Sandbox();
afterAll(() => sb.cleanup());

function checkRoot(pemPath: string): void {
  expect(openssl(["verify", "-x509_strict", "-CAfile", pemPath, pemPath])).toMatch(/: OK/);
  const text = openssl(["x509", "-in", pemPath, "-noout", "-text"]);
  expect(text).toMatch(/Signature Algorithm: ED25519/);
  expect(text).toMatch(/Public Key Algorithm: ED25519/);
  expect(text).toMatch(/CA:TRUE/);
  expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  expect(text).toMatch(/Subject Key Identifier/);
}

describe("key ceremony, one process per custodian", () => {
  it("2-of-3 with the example ca-config: DKG, shares stored encrypted, root signed by the threshold", async () => {
    const config = join(ROOT, "ca-config/ca.yaml");
    const dir = sb.tempDir();
    const { url } = await sb.serve(config, join(dir, "coordinator.db"));
    const homes = sb.fixtureHomes(config);
    const start = sb.tca(["ceremony", "start", "--coordinator", url, "--json"], {
      TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
    });
    expect(await start.exited).toBe(0);
    const ceremonyId = (JSON.parse(start.stdout) as { id: string }).id;

    const custodians = Object.values(homes).map((home) =>
      sb.tca(["custodian", "dkg", "--home", home, "--coordinator", url, "--ceremony", ceremonyId, "--json"], {
        TCA_PASSPHRASE: FIXTURE_PASSPHRASE,
      }),
    );
    const codes = await Promise.all(custodians.map((c) => c.exited));
    expect(codes, custodians.map((c) => c.stderr).join("\n")).toEqual([0, 0, 0]);

    const res = await fetch(`${url}/ca.pem`);
    expect(res.status).toBe(200);
    const pem = await res.text();
    const rootPath = join(dir, "root.pem");
    writeFileSync(rootPath, pem);
    checkRoot(rootPath);
    const der = Buffer.from(await (await fetch(`${url}/ca.crt`)).arrayBuffer());
    expect(der.toString("base64")).toBe(pem.replace(/-----[A-Z ]+-----|\s/g, ""));

    // Every custodian kept the same root, and its own distinct share, encrypted at rest.
    const shares = new Set<string>();
    for (const [i, home] of Object.values(homes).entries()) {
      expect(readFileSync(join(home, "ca.pem"), "utf8")).toBe(pem);
      const out = JSON.parse(custodians[i]!.stdout) as { caKeyId: string };
      const ks = await readKeystore(join(home, "keystore.json"), FIXTURE_PASSPHRASE);
      const share = KeyShareSchema.parse(ks.share);
      expect(share.caKeyId).toBe(out.caKeyId);
      expect(share.ceremonyId).toBe(ceremonyId);
      shares.add(share.signingShare);
      const raw = readFileSync(join(home, "keystore.json"));
      for (const form of [
        share.signingShare,
        Buffer.from(share.signingShare, "hex").toString("base64"),
        Buffer.from(share.signingShare, "hex").toString("base64url"),
      ]) {
        expect(raw.includes(Buffer.from(form))).toBe(false);
      }
      expect(raw.includes(Buffer.from(share.signingShare, "hex"))).toBe(false);
    }
    expect(shares.size).toBe(3);

    // A second ceremony for a CA that has a key is refused.
    const again = sb.tca(["ceremony", "start", "--coordinator", url], {
      TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
    });
    expect(await again.exited).not.toBe(0);
    expect(again.stderr).toMatch(/already has a key/);
  });

  it("3-of-5 through `tca dev --custodians 5 --threshold 3`", async () => {
    const dir = join(sb.tempDir(), "dev");
    const dev = sb.tca(["dev", "--dir", dir, "--port", "0", "--custodians", "5", "--threshold", "3"]);
    await dev.waitFor(/tca dev: ready/, 110_000);
    const url = readFileSync(join(dir, "coordinator.url"), "utf8").trim();
    const rootPath = join(dir, "root.pem");
    writeFileSync(rootPath, await (await fetch(`${url}/ca.pem`)).text());
    checkRoot(rootPath);
    const health = (await (await fetch(`${url}/api/v1/health`)).json()) as { caKey: string };
    expect(health.caKey).toBe("ready");
    expect(readFileSync(join(dir, "ca-config.yaml"), "utf8")).toMatch(/threshold: 3/);
    // Five separate homes, each with its own keystore and the same root.
    for (const name of ["alice", "bob", "carol", "dave", "erin"]) {
      expect(readFileSync(join(dir, "custodians", name, "ca.pem"), "utf8")).toBe(
        readFileSync(rootPath, "utf8"),
      );
    }
    dev.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
  });

  it("`tca dev` stops at once, naming the custodian, when a custodian's ceremony process fails", async () => {
    // A local CA whose database has no key yet, and one custodian whose passphrase file is wrong.
    const dir = join(sb.tempDir(), "dev");
    const port = await freePort();
    await createLocalCa({ dir, custodians: 3, threshold: 2, publicUrl: `http://127.0.0.1:${port}` });
    writeFileSync(join(dir, "coordinator.db"), "");
    writeFileSync(join(dir, "custodians", "bob", "passphrase"), "not bob's passphrase\n");
    const dev = sb.tca(["dev", "--dir", dir, "--no-agents"]);
    // Without the check, alice and carol would wait for bob's round 1 until they time out.
    expect(await dev.exited).toBe(1);
    expect(dev.stderr).toMatch(/custodian bob's ceremony process stopped \(exit code \d\).*passphrase/);
    expect(readFileSync(join(dir, "logs", "bob-dkg.log"), "utf8")).toMatch(/passphrase/);
  });
});

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}
