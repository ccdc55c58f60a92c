// The journal commands against a live dev CA (real coordinator and agents, compiled CLI): a cut
// journal is refused by `tca custodian journal verify`, `recover --accept-loss` rebuilds the issued
// serials from the coordinator, and a journal restored together with its keystore from a backup is
// found by `verify --check-coordinator` (docs/journal.md).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { makeCsr, startDevCa, submitCsr, requestView, KEY_ARGS, type DevCa } from "../helpers/dev-ca.ts";
import { CustodianHome } from "../../src/custodian/home.ts";

const sb = new Sandbox();
let ca: DevCa;
afterAll(() => sb.cleanup());

async function journalCli(name: string, args: string[]) {
  const h = ca.home(name);
  const p = sb.tca(["custodian", "journal", ...args, "--home", h.home], {
    TCA_PASSPHRASE: readFileSync(h.passphraseFile, "utf8").trim(),
  });
  const status = await p.exited;
  return { status, out: p.stdout, err: p.stderr };
}

describe("tca custodian journal on a live CA", () => {
  let serial = "";
  let requestId = "";
  const backupDir = sb.tempDir("tca-journal-backup-");

  beforeAll(async () => {
    ca = await startDevCa(sb, { agents: true });
    for (const n of ["alice", "bob", "carol"])
      for (const f of ["keystore.json", "journal.jsonl"])
        if (existsSync(join(ca.home(n).home, f)))
          copyFileSync(join(ca.home(n).home, f), join(backupDir, `${n}.${f}`));
        else writeFileSync(join(backupDir, `${n}.${f}`), ""); // no journal yet: an empty one
    const { csrPem } = makeCsr(sb.tempDir(), "svc", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=svc.example.internal",
      sans: "DNS:svc.example.internal",
    });
    const sub = await submitCsr(ca, csrPem);
    expect(sub.status).toBe(202);
    const id = String(sub.body.id);
    requestId = id;
    for (let i = 0; i < 120; i++) {
      const v = await requestView(ca, id);
      if (v.status === "issued") {
        serial = String(v.serial);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(serial).not.toBe("");
  }, 150_000);

  it("refuses a cut journal, and recover --accept-loss rebuilds the issued serials from the coordinator", async () => {
    const name = ["alice", "bob", "carol"].find((n) =>
      new CustodianHome(ca.home(n).home).journal().hasSignedSerial(serial),
    )!;
    expect(name).toBeDefined();
    const path = join(ca.home(name).home, "journal.jsonl");
    expect((await journalCli(name, ["verify"])).status).toBe(0);
    writeFileSync(path, "");
    const bad = await journalCli(name, ["verify"]);
    expect(bad.status).toBe(3);
    expect(bad.err).toMatch(
      new RegExp(
        `journal ${path} ends at entry 0 \\(line 0\\) but the keystore's anchor says \\d+ entries were written`,
      ),
    );
    const rec = await journalCli(name, ["recover", "--accept-loss", "--json"]);
    expect(rec.status, rec.err).toBe(0);
    expect(JSON.parse(rec.out)).toMatchObject({ action: "recovered", carriedOver: 0 });
    expect(JSON.parse(rec.out).fromCoordinator).toBeGreaterThanOrEqual(1);
    const j = new CustodianHome(ca.home(name).home).journal();
    expect(j.hasSignedSerial(serial)).toBe(true); // never signed again
    const ok = await journalCli(name, ["verify", "--check-coordinator"]);
    expect(ok.status, ok.err).toBe(0);
  }, 60_000);

  it("a journal and keystore restored together from a backup pass the local check, not --check-coordinator; recover starts over", async () => {
    const view = (await requestView(ca, requestId)) as unknown as { approvals: { custodian: string }[] };
    const name = view.approvals[0]!.custodian;
    for (const f of ["keystore.json", "journal.jsonl"])
      copyFileSync(join(backupDir, `${name}.${f}`), join(ca.home(name).home, f));
    expect((await journalCli(name, ["verify"])).status).toBe(0); // nothing local can tell
    const checked = await journalCli(name, ["verify", "--check-coordinator"]);
    expect(checked.status).toBe(3);
    expect(checked.err).toMatch(
      new RegExp(
        `the coordinator records 1 decision\\(s\\) by ${name} that journal .* does not hold \\(first: approve of request ${requestId}`,
      ),
    );
    const rec = await journalCli(name, ["recover", "--accept-loss", "--json"]);
    expect(rec.status, rec.err).toBe(0);
    expect(JSON.parse(rec.out)).toMatchObject({ action: "recovered", lost: 1 });
    expect((await journalCli(name, ["verify", "--check-coordinator"])).status).toBe(0);
  }, 60_000);
});
