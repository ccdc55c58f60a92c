// `tca custodian init` makes an identity in an encrypted keystore and prints what goes
// into the roster; the CLI fails clearly on a wrong passphrase, a missing one, or an existing home.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { readKeystore } from "../../src/custodian/keystore.ts";
import { identityFingerprint } from "../../src/protocol/identity.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());
const PASS = "correct horse battery staple";

describe("tca custodian init", () => {
  const home = join(sb.tempDir(), "dave");

  it("creates an identity, prints the roster entry and fingerprint, and stores secrets encrypted", async () => {
    const p = sb.tca(["custodian", "init", "--home", home, "--name", "dave", "--json"], {
      TCA_PASSPHRASE: PASS,
    });
    expect(await p.exited, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout) as {
      name: string;
      signingKey: string;
      hpkeKey: string;
      fingerprint: string;
    };
    expect(out.name).toBe("dave");
    expect(Buffer.from(out.signingKey, "base64url")).toHaveLength(32);
    expect(Buffer.from(out.hpkeKey, "base64url")).toHaveLength(32);
    expect(out.fingerprint).toBe(identityFingerprint(out));
    expect(out.fingerprint).toMatch(/^([0-9a-f]{4}:){7}[0-9a-f]{4}$/);
    expect(statSync(join(home, "keystore.json")).mode & 0o777).toBe(0o600);
    const ks = await readKeystore(join(home, "keystore.json"), PASS);
    const raw = readFileSync(join(home, "keystore.json"), "utf8");
    expect(raw).not.toContain(ks.identity.signingSecret);
    expect(raw).not.toContain(ks.identity.hpkeSecret);
    expect(raw).not.toContain(PASS);

    const text = sb.tca(["custodian", "init", "--home", join(sb.tempDir(), "erin"), "--name", "erin"], {
      TCA_PASSPHRASE: PASS,
    });
    expect(await text.exited).toBe(0);
    expect(text.stdout).toMatch(/fingerprint: [0-9a-f:]+/);
    expect(text.stdout).toMatch(/- name: erin\n\s+signingKey: \S+\n\s+hpkeKey: \S+/);
  });

  it("refuses to overwrite an existing keystore", async () => {
    const p = sb.tca(["custodian", "init", "--home", home, "--name", "dave"], { TCA_PASSPHRASE: PASS });
    expect(await p.exited).not.toBe(0);
    expect(p.stderr).toMatch(/^tca: error: .*refusing to overwrite/);
  });

  it("says what is wrong with the passphrase, with distinct exit codes", async () => {
    const none = sb.tca(["custodian", "init", "--home", join(sb.tempDir(), "x"), "--name", "x"], {
      TCA_PASSPHRASE: "",
    });
    expect(await none.exited).toBe(2);
    expect(none.stderr).toMatch(/^tca: error: No keystore passphrase.*--passphrase-file.*TCA_PASSPHRASE/);
    const weak = sb.tca(["custodian", "init", "--home", join(sb.tempDir(), "y"), "--name", "y"], {
      TCA_PASSPHRASE: "short",
    });
    expect(await weak.exited).toBe(2);
    expect(weak.stderr).toMatch(/^tca: error: .*shorter than 8 characters/m);
    // Any command that opens the keystore with the wrong passphrase fails clearly and changes nothing.
    const before = readFileSync(join(home, "keystore.json"));
    const wrong = sb.tca(
      [
        "custodian",
        "dkg",
        "--home",
        home,
        "--coordinator",
        "http://127.0.0.1:9",
        "--config",
        join(process.cwd(), "ca-config/ca.yaml"),
      ],
      { TCA_PASSPHRASE: "not the passphrase" },
    );
    expect(await wrong.exited).toBe(1);
    expect(wrong.stderr).toMatch(/^tca: error: Wrong passphrase for keystore/m);
    expect(readFileSync(join(home, "keystore.json")).equals(before)).toBe(true);
  });

  it("approve refuses to act without --yes when stdin is not a terminal", async () => {
    const p = sb.tca(
      [
        "custodian",
        "approve",
        "00000000-0000-4000-8000-000000000000",
        "--home",
        home,
        "--coordinator",
        "http://127.0.0.1:9",
        "--config",
        join(process.cwd(), "ca-config/ca.yaml"),
      ],
      { TCA_PASSPHRASE: PASS },
    );
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/pass --yes/);
  });
});
