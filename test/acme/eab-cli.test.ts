// `tca acme eab-key create|list|delete` (src/cli/commands/acme.ts), the compiled CLI against a
// coordinator serving ACME without open registration: the key it prints binds an ACME account.
import "reflect-metadata";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN, TCA_BIN } from "../helpers/processes.ts";

let h: HttpCa;
let dir: string;

beforeAll(async () => {
  h = await startHttpCa({ acme: { config: { openRegistration: undefined } } });
  dir = mkdtempSync(join(tmpdir(), "tca-eab-cli-"));
  writeFileSync(join(dir, "admin.token"), `${EXAMPLE_ADMIN_TOKEN}\n`);
});
afterAll(() => h.ca.close());

/** Runs bin/tca.js without blocking this process's event loop (the coordinator runs in it). */
function tca(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [TCA_BIN, ...args],
      { env: { PATH: process.env.PATH ?? "", TCA_COORDINATOR: h.url, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("tca acme eab-key", () => {
  it("creates a key that binds an account, lists it as bound, deletes only unbound keys", async () => {
    const made = await tca([
      "acme",
      "eab-key",
      "create",
      "--requester",
      "dev",
      "--admin-token-file",
      join(dir, "admin.token"),
    ]);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const keyId = /key id\s+(\S+)/.exec(made.stdout)![1]!;
    const hmac = /hmac key\s+(\S+)/.exec(made.stdout)![1]!;
    expect(made.stdout).toContain(
      `lego --server ${h.url}/acme/directory --eab --kid ${keyId} --hmac ${hmac}`,
    );
    expect(made.stdout).toContain(
      `certbot certonly --server ${h.url}/acme/directory --eab-kid ${keyId} --eab-hmac-key ${hmac}`,
    );

    const c = await TestAcmeClient.create(`${h.url}/acme/directory`);
    expect(
      (await c.register({ externalAccountBinding: await c.externalAccountBinding(keyId, hmac) })).status,
    ).toBe(201);

    const spare = JSON.parse(
      (
        await tca(["acme", "eab-key", "create", "--requester", "dev", "--json"], {
          TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
        })
      ).stdout,
    ) as { keyId: string; hmacKey: string; directory: string };
    expect(spare.directory).toBe(`${h.url}/acme/directory`);

    const listed = await tca(["acme", "eab-key", "list", "--json"], { TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN });
    const keys = (JSON.parse(listed.stdout) as { keys: { keyId: string; bound: boolean }[] }).keys;
    expect(keys.find((k) => k.keyId === keyId)?.bound).toBe(true);
    expect(keys.find((k) => k.keyId === spare.keyId)?.bound).toBe(false);
    expect(listed.stdout).not.toContain(spare.hmacKey);
    const text = await tca(["acme", "eab-key", "list"], { TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN });
    expect(text.stdout).toMatch(new RegExp(`${keyId}\\s+dev\\s+\\S+\\s+bound to account`));

    const bound = await tca(["acme", "eab-key", "delete", keyId], { TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN });
    expect(bound.code).toBe(1);
    expect(bound.stderr).toMatch(/^tca: error: .*bound to account/);
    expect(bound.stderr.trim().split("\n")).toHaveLength(1);
    const del = await tca(["acme", "eab-key", "delete", spare.keyId], {
      TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
    });
    expect(del.code).toBe(0);
    expect(del.stdout).toBe(`deleted ${spare.keyId}\n`);
  });

  it("refuses without an admin token, with a requester's, and for an unknown requester", async () => {
    const none = await tca(["acme", "eab-key", "list"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^tca: error: an admin token is needed/);
    const requester = await tca(["acme", "eab-key", "list"], { TCA_ADMIN_TOKEN: EXAMPLE_REQUESTER_TOKEN });
    expect(requester.code).toBe(1);
    expect(requester.stderr).toMatch(/^tca: error: .*may not manage ACME external account binding keys/);
    const unknown = await tca(["acme", "eab-key", "create", "--requester", "nobody"], {
      TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^tca: error: requester nobody is not in ca-config/);
  });
});
