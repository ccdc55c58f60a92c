// `tca init`'s generator (src/config/init.ts), flag parsing and prompt flow (src/cli): what it
// writes loads with the real loader, tokens are stored only hashed, placeholders are refused by
// the loader with a clear message, bad answers are clear usage errors, and the prompts re-ask.
import { describe, expect, it, afterAll } from "vitest";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import {
  caSubject,
  InitSpecError,
  nextSteps,
  parseCustodianEntry,
  planInit,
  writeInit,
  type InitSpec,
} from "../../src/config/init.ts";
import { loadCaConfig, parseCaConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { generateIdentity, publicIdentity } from "../../src/protocol/identity.ts";
import { completeSpec, readCustodianEntry, specFromFlags } from "../../src/cli/commands/init.ts";
import { promptSpec } from "../../src/cli/init-prompts.ts";
import { selfRequester } from "../../src/coordinator/self-tls.ts";
import { nameToDer } from "../../src/x509/names.ts";

const dirs: string[] = [];
const temp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "tca-init-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const entry = (name: string) => publicIdentity(generateIdentity(name));
const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

function spec(over: Partial<InitSpec> = {}): InitSpec {
  return {
    dir: join(temp(), "ca-config"),
    caName: "Example Root CA",
    rootValidityDays: 3650,
    custodians: ["alice", "bob", "carol"],
    entries: ["alice", "bob", "carol"].map(entry),
    threshold: 2,
    profiles: ["server", "client"],
    requesters: [],
    admins: ["admin"],
    tlsNames: [],
    ...over,
  };
}

describe("planInit and writeInit", () => {
  it("writes a ca.yaml the loader accepts, with tokens stored only as SHA-256", () => {
    const s = spec({ requesters: ["deploy", "ci"], caOrg: "Example, Inc.", caCountry: "de" });
    const plan = planInit(s);
    const res = writeInit(plan, { force: false });
    const loaded = loadCaConfig(res.configPath);
    expect(res.digest).toBe(loaded.digest);
    const c = loaded.config;
    expect(c.ca.subject).toBe("CN=Example Root CA, O=Example\\, Inc., C=DE");
    nameToDer(c.ca.subject);
    expect(c.threshold).toBe(2);
    expect(c.custodians).toEqual(s.entries);
    // ocsp-responder always: the coordinator's delegated OCSP responder (docs/ocsp.md).
    expect(Object.keys(c.profiles)).toEqual(["server", "client", "ocsp-responder"]);
    expect(c.profiles["ocsp-responder"]).toMatchObject({ ocspNoCheck: true, extKeyUsage: ["ocspSigning"] });
    expect(c.profiles.server!.extKeyUsage).toEqual(["serverAuth"]);
    expect(c.profiles.client!.extKeyUsage).toEqual(["clientAuth"]);
    expect(plan.tokens.map((t) => `${t.role}:${t.name}`)).toEqual([
      "admin:admin",
      "requester:deploy",
      "requester:ci",
    ]);
    const text = readFileSync(res.configPath, "utf8");
    for (const t of plan.tokens) {
      expect(t.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(text).not.toContain(t.token);
      const list = t.role === "admin" ? c.admins : c.requesters;
      expect(list.find((x) => x.name === t.name)!.tokenSha256).toBe(sha(t.token));
    }
    expect(c.requesters.map((r) => r.profiles)).toEqual([
      ["server", "client"],
      ["server", "client"],
      ["ocsp-responder"],
    ]);
    expect(c.requesters[0]!.allowedNames).toEqual(["*"]);
    expect(plan.warnings.join("\n")).toMatch(/allowedNames.*--domain/);
    expect(plan.tokens.map((t) => t.token).length).toBe(new Set(plan.tokens.map((t) => t.token)).size);
  });

  it("the intermediate template; --domain narrows requesters and constrains intermediates; leaf profiles only are granted", () => {
    const plan = planInit(
      spec({ profiles: ["server", "intermediate"], domain: "*.Example.Internal", requesters: ["svc"] }),
    );
    const c = parseCaConfig(plan.text).config;
    expect(c.profiles.intermediate!.ca).toBe(true);
    expect(c.profiles.intermediate!.pathLen).toBe(0);
    expect(c.profiles.intermediate!.nameConstraints?.permittedDns).toEqual([".example.internal"]);
    expect(c.requesters[0]!.profiles).toEqual(["server"]);
    expect(c.requesters[0]!.allowedNames).toEqual(["*.example.internal"]);
    expect(plan.warnings).toEqual([]);
    const noDomain = planInit(spec({ profiles: ["intermediate"], requesters: ["sub"] }));
    expect(parseCaConfig(noDomain.text).config.requesters[0]!.profiles).toEqual(["intermediate"]);
    expect(noDomain.warnings.join("\n")).toMatch(/intermediate profile has no name constraints/);
  });

  it("--tls-name adds the coordinator requester that `tca serve --tls auto` checks for", () => {
    const names = ["ca.example.internal", "10.0.0.5"];
    const plan = planInit(spec({ tlsNames: names }));
    const c = parseCaConfig(plan.text).config;
    const r = selfRequester(c, "server", names);
    expect(r.profiles).toEqual(["server"]);
    expect(r.allowedNames).toEqual(names);
    expect(r.exclusive).toBe(true); // no other requester may ask for its names (docs/tls.md)
    // No token is handed out for it: the coordinator submits its own request without one.
    expect(plan.tokens.map((t) => t.name)).toEqual(["admin"]);
    expect(() => selfRequester(parseCaConfig(planInit(spec()).text).config, "server", names)).toThrow(
      /requester named "coordinator"/,
    );
    expect(() => planInit(spec({ tlsNames: ["ca.x"], profiles: ["client"] }))).toThrow(/server profile/);
    expect(() => planInit(spec({ requesters: ["coordinator"] }))).toThrow(/kept for the coordinator/);
  });

  it("placeholders: written, said so in the file, refused by the loader naming who and what to do", () => {
    const s = spec({ entries: [entry("alice")] });
    const plan = planInit(s);
    expect(plan.placeholders).toEqual(["bob", "carol"]);
    const res = writeInit(plan, { force: false });
    expect(res.digest).toBeUndefined();
    const text = readFileSync(res.configPath, "utf8");
    expect(text).toMatch(/NOT READY: the entries of bob, carol are placeholders/);
    let err: unknown;
    try {
      loadCaConfig(res.configPath);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /roster entries of bob, carol are still placeholders: run `tca custodian init`/,
    );
    // Filling them in makes it load.
    let filled = text;
    for (const name of ["bob", "carol"]) {
      const e = entry(name);
      filled = filled.replace(
        new RegExp(`(- name: ${name}\\n\\s+signingKey: )"[^"]*"(\\n\\s+hpkeKey: )"[^"]*"`),
        `$1${e.signingKey}$2${e.hpkeKey}`,
      );
    }
    expect(parseCaConfig(filled).config.custodians.map((c) => c.name)).toEqual(["alice", "bob", "carol"]);
    const steps = nextSteps(plan);
    expect(steps[0]!.commands).toEqual([
      "tca custodian init --home ~/.tca/custodian --name bob",
      "tca custodian init --home ~/.tca/custodian --name carol",
    ]);
  });

  it("refuses to overwrite without --force; --token-dir writes mode-0600 files and never inside --dir", () => {
    const base = temp();
    const s = spec({ dir: join(base, "cfg"), tokenDir: join(base, "tokens"), requesters: ["svc"] });
    const first = writeInit(planInit(s), { force: false });
    const token = readFileSync(join(base, "tokens", "requester-svc.token"), "utf8").trim();
    expect(statSync(join(base, "tokens", "requester-svc.token")).mode & 0o777).toBe(0o600);
    expect(statSync(join(base, "tokens", "admin-admin.token")).mode & 0o777).toBe(0o600);
    expect(statSync(join(base, "tokens")).mode & 0o777).toBe(0o700);
    expect(loadCaConfig(first.configPath).config.requesters[0]!.tokenSha256).toBe(sha(token));
    expect(() => writeInit(planInit(s), { force: false })).toThrow(/already exist.*--force/);
    expect(readFileSync(join(base, "tokens", "requester-svc.token"), "utf8").trim()).toBe(token);
    writeInit(planInit(s), { force: true });
    expect(readFileSync(join(base, "tokens", "requester-svc.token"), "utf8").trim()).not.toBe(token);
    expect(() => planInit({ ...s, tokenDir: join(s.dir, "tokens") })).toThrow(/inside --dir/);
    expect(() => planInit({ ...s, tokenDir: s.dir })).toThrow(/inside --dir/);
    const steps = nextSteps(planInit(s), base);
    expect(steps.map((x) => x.commands.join("\n")).join("\n")).toContain(
      "TCA_ADMIN_TOKEN=$(cat tokens/admin-admin.token) tca ceremony start",
    );
    expect(steps.at(-1)!.commands[0]).toBe(
      "tca request svc.example.internal --coordinator http://127.0.0.1:8443 --token-file tokens/requester-svc.token",
    );
  });

  it("refuses a token directory others can write to, and leaves no temp file behind", () => {
    const base = temp();
    const open = join(base, "open");
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o777);
    const s = spec({ dir: join(base, "cfg"), tokenDir: open, requesters: ["svc"] });
    expect(() => writeInit(planInit(s), { force: false })).toThrow(/open to other users \(mode 777\)/);
    expect(readdirSync(open)).toEqual([]);
    chmodSync(open, 0o700);
    writeInit(planInit(s), { force: false });
    expect(readdirSync(open).sort()).toEqual(["admin-admin.token", "requester-svc.token"]);
  });

  it("bad answers are InitSpecErrors naming the problem", () => {
    const bad: [Partial<InitSpec>, RegExp][] = [
      [{ threshold: 1 }, /threshold 1 would let any one custodian sign alone/],
      [{ threshold: 4 }, /threshold 4: must be from 2 to the 3 custodians/],
      [{ threshold: 0 }, /threshold 0/],
      [{ custodians: ["alice"], entries: [] }, /2 to 64 custodian names/],
      [{ custodians: ["alice", "Bob"], entries: [] }, /custodian name "Bob"/],
      [{ custodians: ["alice", "alice"], entries: [] }, /"alice" is named twice/],
      [{ entries: [entry("dave")] }, /entry for "dave" names no custodian/],
      [{ entries: [entry("alice"), entry("alice")] }, /"alice" is given twice/],
      [{ profiles: ["server", "web" as "server"] }, /unknown profile "web"/],
      [{ profiles: [] }, /at least one profile/],
      [{ caName: "" }, /CA name.*empty/],
      [{ caName: "x".repeat(65) }, /65 characters; RFC 5280 allows at most 64/],
      [{ caCountry: "USA" }, /two-letter/],
      [{ publicUrl: "ftp://x" }, /http:\/\/ or https:\/\//],
      [{ publicUrl: "nope" }, /not a URL/],
      [{ domain: "not a domain" }, /--domain/],
      [{ tlsNames: ["bad name"] }, /--tls-name "bad name"/],
      [{ requesters: ["ok", "ok"] }, /"ok" is named twice/],
      [{ admins: ["Root"] }, /admin name "Root"/],
      [{ rootValidityDays: 0 }, /--root-validity-days/],
    ];
    for (const [over, re] of bad) expect(() => planInit(spec(over)), JSON.stringify(over)).toThrow(re);
    for (const [over] of bad) expect(() => planInit(spec(over))).toThrow(InitSpecError);
    // Same key twice (someone pasted one entry under two names).
    const a = entry("alice");
    expect(() => planInit(spec({ entries: [a, { ...a, name: "bob" }] }))).toThrow(/same key/);
    // t = n is allowed, with a warning.
    expect(planInit(spec({ threshold: 3 })).warnings.join("\n")).toMatch(/threshold 3 of 3.*consider 2 of 3/);
  });

  it("escapes RFC 4514 specials so the subject encodes", () => {
    const s = caSubject('Acme "Root" + CA; <1>', "#hash", "us");
    expect(s).toBe('CN=Acme \\"Root\\" \\+ CA\\; \\<1\\>, O=\\#hash, C=US');
    expect(nameToDer(s).length).toBeGreaterThan(0);
  });
});

describe("roster entries", () => {
  const e = entry("alice");
  const text = [
    "custodian alice created in /home/alice/.tca/custodian",
    "fingerprint: abcd ef01",
    "",
    "Add this entry to the custodians list in ca-config/ca.yaml:",
    `  - name: ${e.name}`,
    `    signingKey: ${e.signingKey}`,
    `    hpkeKey: ${e.hpkeKey}`,
  ].join("\n");

  it("reads `tca custodian init`'s text and --json output, from a file or as text", () => {
    expect(parseCustodianEntry(text, "x")).toEqual(e);
    expect(parseCustodianEntry(JSON.stringify({ ...e, fingerprint: "ab cd" }, null, 2), "x")).toEqual(e);
    const f = join(temp(), "alice.entry");
    writeFileSync(f, text);
    expect(readCustodianEntry(f)).toEqual(e);
    expect(readCustodianEntry(JSON.stringify(e))).toEqual(e);
  });

  it("says what is wrong with a bad entry", () => {
    expect(() => parseCustodianEntry(`name: alice\nsigningKey: ${e.signingKey}`, "a.txt")).toThrow(
      /a.txt: no hpkeKey found/,
    );
    expect(() => parseCustodianEntry(text.replace(e.hpkeKey, "short"), "a.txt")).toThrow(
      /hpkeKey: must encode 32 bytes/,
    );
    expect(() => parseCustodianEntry("{nope", "a.txt")).toThrow(/not valid JSON/);
    expect(() => readCustodianEntry("/no/such/file")).toThrow(/no such file/);
  });
});

describe("flags", () => {
  it("flags-only needs --ca-name, --custodians (or entries) and --threshold", () => {
    expect(() => completeSpec(specFromFlags({ input: true }))).toThrow(
      /--ca-name, --custodians \(or --custodian-entry\), --threshold required when tca init does not run on a terminal/,
    );
    const f = join(temp(), "bob.json");
    writeFileSync(f, JSON.stringify(entry("bob")));
    const s = completeSpec(
      specFromFlags({
        input: true,
        caName: "X",
        custodianEntry: [JSON.stringify(entry("alice")), f],
        threshold: "2",
        requester: ["a", "b"],
        admin: ["ops"],
        profiles: "server,client,intermediate",
      }),
    );
    expect(s.custodians).toEqual(["alice", "bob"]);
    expect(s.requesters).toEqual(["a", "b"]);
    expect(s.admins).toEqual(["ops"]);
    expect(s.profiles).toEqual(["server", "client", "intermediate"]);
    expect(specFromFlags({ input: true }).admins).toEqual(["admin"]);
    expect(() => specFromFlags({ input: true, threshold: "two" })).toThrow(
      /--threshold "two": a whole number/,
    );
  });
});

describe("prompt flow", () => {
  async function drive(answers: string[], start: Partial<InitSpec> = {}) {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = "";
    output.on("data", (d: Buffer) => (shown += d.toString()));
    input.end(answers.map((a) => `${a}\n`).join(""));
    const got = await promptSpec(start, { input, output }, readCustodianEntry);
    return { got, shown };
  }

  it("takes defaults on empty answers, re-asks wrong ones, reads entries, warns at t = n", async () => {
    const aliceFile = join(temp(), "alice.txt");
    const a = entry("alice");
    writeFileSync(aliceFile, JSON.stringify(a));
    const dir = join(temp(), "cfg");
    const { got, shown } = await drive([
      dir, // directory
      "", // CA name: no default → asked again
      "Example Root CA",
      "Example Org",
      "USA", // bad country → again
      "us",
      "alice,bob", // custodians
      join(temp(), "missing.txt"), // alice's entry: no such file → again
      aliceFile,
      "", // bob: placeholder
      "1", // threshold 1 → again
      "2", // t = n: accepted with a warning
      "server,client,intermediate",
      "example.internal",
      "deploy,ci",
      "", // admins: default admin
      "ca.example.internal,10.0.0.5",
      "https://ca.example.internal",
      "", // token dir: print
    ]);
    expect(got).toMatchObject({
      dir,
      caName: "Example Root CA",
      caOrg: "Example Org",
      caCountry: "US",
      custodians: ["alice", "bob"],
      entries: [a],
      threshold: 2,
      profiles: ["server", "client", "intermediate"],
      domain: "example.internal",
      requesters: ["deploy", "ci"],
      admins: ["admin"],
      tlsNames: ["ca.example.internal", "10.0.0.5"],
      publicUrl: "https://ca.example.internal",
      tokenDir: undefined,
    });
    expect(shown).toMatch(/CA name \(the root certificate's CN\): /);
    expect(shown).toMatch(/the CA name \(--ca-name\) is empty/);
    expect(shown).toMatch(/two-letter ISO 3166 code/);
    expect(shown).toMatch(/missing.txt: no such file/);
    expect(shown).toMatch(/threshold 1 would let any one custodian sign alone/);
    expect(shown).toMatch(/warning: threshold 2 of 2/);
    expect(shown).toMatch(/Threshold: how many of the 2 custodians must sign \(2 to 2\) \[2\]: /);
    // The answers make a config the loader takes (with bob a placeholder).
    const plan = planInit(got);
    expect(plan.placeholders).toEqual(["bob"]);
    writeInit(plan, { force: false });
    expect(existsSync(join(dir, "ca.yaml"))).toBe(true);
  });

  it("offers the flags' values as defaults and skips entries already given", async () => {
    const a = entry("alice");
    const b = entry("bob");
    const start = specFromFlags({
      input: true,
      caName: "From Flags",
      custodians: "alice,bob,carol",
      custodianEntry: [JSON.stringify(a), JSON.stringify(b)],
      threshold: "3",
      requester: ["svc"],
    });
    // Every answer empty (carol's entry too: a placeholder); '-' clears the requesters.
    const { got, shown } = await drive(["", "", "", "", "", "", "", "", "", "-", "", "", "", ""], start);
    expect(got.caName).toBe("From Flags");
    expect(got.custodians).toEqual(["alice", "bob", "carol"]);
    expect(got.entries).toEqual([a, b]);
    expect(got.threshold).toBe(3);
    expect(got.requesters).toEqual([]);
    expect(shown).toMatch(/\[From Flags\]/);
    expect(shown).toMatch(/\[alice,bob,carol\]/);
    expect(shown).not.toMatch(/alice's roster entry/);
    expect(shown).toMatch(/carol's roster entry/);
  });

  it("input that ends early is a usage error and nothing is returned", async () => {
    await expect(drive(["dir", "Name"])).rejects.toThrow(/input ended before "Organization \(O\), optional"/);
  });
});
