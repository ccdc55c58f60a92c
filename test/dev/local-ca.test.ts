// The local (dev) CA's keystores: made in parallel at the lowest scrypt cost the keystore accepts,
// because each passphrase sits in a file beside its keystore; every other keystore keeps the
// default cost, and re-encrypting (CustodianHome.save, after the ceremony) never changes a cost.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalCa, DEV_KEYSTORE_SCRYPT_N } from "../../src/dev/local-ca.ts";
import { CustodianHome } from "../../src/custodian/home.ts";
import { DEFAULT_SCRYPT_N, MIN_SCRYPT_N } from "../../src/custodian/keystore.ts";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "tca-local-ca-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const scryptN = (home: CustodianHome) =>
  (JSON.parse(readFileSync(home.keystorePath, "utf8")) as { kdf: { N: number } }).kdf.N;

describe("local CA keystores", () => {
  it("createLocalCa makes every custodian's keystore at the dev cost, each opening with its own passphrase file", async () => {
    const { layout, config } = await createLocalCa({
      dir: join(tempDir(), "ca"),
      custodians: 4,
      threshold: 3,
      publicUrl: "http://127.0.0.1:1",
    });
    expect(DEV_KEYSTORE_SCRYPT_N).toBe(MIN_SCRYPT_N);
    expect(config.config.custodians.map((c) => c.name)).toEqual(["alice", "bob", "carol", "dave"]);
    for (const c of layout.custodians) {
      const home = new CustodianHome(c.home);
      expect(scryptN(home)).toBe(DEV_KEYSTORE_SCRYPT_N);
      const secrets = await home.open(readFileSync(c.passphraseFile, "utf8").trim());
      expect(secrets.identity.name).toBe(c.name);
      expect(home.identity().signingKey).toBe(
        config.config.custodians.find((x) => x.name === c.name)!.signingKey,
      );
    }
  });

  it("a custodian made by init has the default cost, and save() keeps whatever cost a keystore has", async () => {
    const real = new CustodianHome(join(tempDir(), "real"));
    await real.init("alice", "correct horse");
    expect(scryptN(real)).toBe(DEFAULT_SCRYPT_N);
    await real.save("correct horse", { ...(await real.open("correct horse")), note: "share" });
    expect(scryptN(real)).toBe(DEFAULT_SCRYPT_N);

    const cheap = new CustodianHome(join(tempDir(), "cheap"));
    await cheap.init("bob", "pw", { scryptN: 2 ** 15 });
    await cheap.save("pw", { ...(await cheap.open("pw")), note: "share" });
    expect(scryptN(cheap)).toBe(2 ** 15);
    expect((await cheap.open("pw")).note).toBe("share");
  }, 30_000);
});
