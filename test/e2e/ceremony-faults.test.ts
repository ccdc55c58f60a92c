// docs/architecture.md §3.5: a cheating custodian is named; a coordinator that alters a round-1 package
// for one recipient is detected; a coordinator announcing another roster or threshold is refused.
import { afterAll, describe, expect, it } from "vitest";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, ROOT, FIXTURE_PASSPHRASE, EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";
import { readKeystore } from "../../src/custodian/keystore.ts";
import { startRewritingProxy } from "../helpers/proxy.ts";

const sb = new Sandbox();
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) s.close();
  await sb.cleanup();
});
const EXAMPLE = join(ROOT, "ca-config/ca.yaml");
const env = { TCA_PASSPHRASE: FIXTURE_PASSPHRASE };
/** One `tca custodian dkg` process for a fixture custodian. */
const dkgProcess = (home: string, coordinator: string, ceremony: string) =>
  sb.tca(["custodian", "dkg", "--home", home, "--coordinator", coordinator, "--ceremony", ceremony], env);

async function startCeremony(url: string): Promise<string> {
  const p = sb.tca(["ceremony", "start", "--coordinator", url, "--json"], {
    TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
  });
  expect(await p.exited, p.stderr).toBe(0);
  return (JSON.parse(p.stdout) as { id: string }).id;
}

interface CeremonyState {
  status: string;
  failure: { reason: string; culprits: string[] } | null;
}
async function ceremonyState(url: string, id: string): Promise<CeremonyState> {
  return (await (
    await fetch(`${url}/api/v1/ceremonies/${id}`, {
      headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    })
  ).json()) as CeremonyState;
}

/** A man-in-the-middle "coordinator" that rewrites round-1 packages on the way to one custodian. */
async function tamperingProxy(target: string): Promise<string> {
  const { url, server } = await startRewritingProxy(target, (req, body) => {
    if (
      req.method !== "GET" ||
      !req.url!.includes("/messages?type=dkg%2Fround1") ||
      req.url!.includes("ack")
    ) {
      return body;
    }
    const json = JSON.parse(body.toString()) as {
      messages: { payload: string; signature: string }[];
    };
    const first = json.messages[0]!;
    const payload = JSON.parse(Buffer.from(first.payload, "base64url").toString()) as {
      body: { round1: { commitment: string[] } };
    };
    const c = payload.body.round1.commitment;
    c[0] = c[0]!.slice(0, -2) + (c[0]!.endsWith("00") ? "01" : "00");
    first.payload = Buffer.from(JSON.stringify(payload)).toString("base64url");
    return Buffer.from(JSON.stringify(json));
  });
  servers.push(server);
  return url;
}

/**
 * Forwards to the coordinator, but for the first request of each kind `drop` picks, cuts the
 * connection once the coordinator has answered: the message is stored, the sender never hears so.
 */
async function droppingProxy(target: string, drop: (req: IncomingMessage) => boolean): Promise<string> {
  const dropped = new Set<string>();
  const server = createServer((req, res) => {
    const up = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (upRes) => {
      const key = `${req.method} ${req.url}`;
      if (drop(req) && !dropped.has(key)) {
        dropped.add(key);
        upRes.resume();
        upRes.on("end", () => req.socket.destroy());
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("ceremony faults fail closed and name the culprit", () => {
  it("a custodian sending a corrupted round-2 share is named, by a complaint anyone can check", async () => {
    const dir = sb.tempDir();
    const { url } = await sb.serve(EXAMPLE, join(dir, "db.sqlite"));
    const homes = sb.fixtureHomes(EXAMPLE);
    const id = await startCeremony(url);
    const evil = sb.node(
      ["--import", "tsx", join(ROOT, "test/fixtures/evil-custodian.ts"), homes.carol, url, "round2", "alice"],
      env,
    );
    const alice = dkgProcess(homes.alice, url, id);
    const bob = dkgProcess(homes.bob, url, id);
    expect(await alice.exited).toBe(3);
    expect(alice.stderr).toMatch(/carol sent me a bad round-2 share/);
    expect(alice.stderr).toMatch(/culprit: carol/);
    expect(await bob.exited).toBe(3);
    expect(await evil.exited).toBe(3);
    const state = await ceremonyState(url, id);
    expect(state.status).toBe("failed");
    expect(state.failure!.culprits).toEqual(["carol"]);
    expect(state.failure!.reason).toMatch(/verified from the revealed key/);
    // No share became active anywhere.
    const status = sb.tca(["ceremony", "status", "--coordinator", url, id], {
      TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN,
    });
    expect(await status.exited).toBe(0);
    expect(status.stdout).toMatch(/culprit: carol/);
    expect((await fetch(`${url}/ca.pem`)).status).toBe(404);
    for (const home of [homes.alice, homes.bob]) {
      expect((await readKeystore(join(home, "keystore.json"), FIXTURE_PASSPHRASE)).share).toBeUndefined();
    }
  });

  it("a custodian confirming an altered public key package under the genuine hash is named; nothing activates at the coordinator", async () => {
    const dir = sb.tempDir();
    const { url } = await sb.serve(EXAMPLE, join(dir, "db.sqlite"));
    const homes = sb.fixtureHomes(EXAMPLE);
    const id = await startCeremony(url);
    const evil = sb.node(
      [
        "--import",
        "tsx",
        join(ROOT, "test/fixtures/evil-custodian.ts"),
        homes.carol,
        url,
        "confirm",
        "alice",
      ],
      env,
    );
    const alice = dkgProcess(homes.alice, url, id);
    const bob = dkgProcess(homes.bob, url, id);
    expect(await alice.exited).toBe(3);
    expect(await bob.exited).toBe(3);
    expect(await evil.exited).toBe(3);
    const state = await ceremonyState(url, id);
    expect(state.status).toBe("failed");
    expect(state.failure!.culprits).toEqual(["carol"]);
    expect(state.failure!.reason).toMatch(/carol confirmed a public key package that does not match/);
    // The honest custodians check the packages themselves too: neither activated a share.
    for (const home of [homes.alice, homes.bob]) {
      expect((await readKeystore(join(home, "keystore.json"), FIXTURE_PASSPHRASE)).share).toBeUndefined();
    }
    expect((await (await fetch(`${url}/api/v1/health`)).json()) as { caKey: string }).toMatchObject({
      caKey: "none",
    });
  });

  it("a coordinator that alters one round-1 package for one recipient is detected", async () => {
    const dir = sb.tempDir();
    const { url } = await sb.serve(EXAMPLE, join(dir, "db.sqlite"));
    const proxied = await tamperingProxy(url);
    const homes = sb.fixtureHomes(EXAMPLE);
    const id = await startCeremony(url);
    const alice = dkgProcess(homes.alice, url, id);
    const bob = dkgProcess(homes.bob, proxied, id);
    const carol = dkgProcess(homes.carol, url, id);
    expect(await bob.exited).toBe(3);
    expect(bob.stderr).toMatch(/dkg\/round1 message does not verify.*bad signature/);
    expect(await alice.exited).toBe(3);
    expect(await carol.exited).toBe(3);
    const state = await ceremonyState(url, id);
    expect(state.status).toBe("failed");
    expect(state.failure!.reason).toMatch(/^bob aborted: .*altered/);
  });

  it("a custodian whose connection drops after the coordinator stored its message sends it again, and the ceremony completes", async () => {
    const dir = sb.tempDir();
    const { url } = await sb.serve(EXAMPLE, join(dir, "db.sqlite"));
    const flaky = await droppingProxy(url, (req) => req.method === "POST" && req.url!.includes("/messages"));
    const homes = sb.fixtureHomes(EXAMPLE);
    const id = await startCeremony(url);
    const alice = dkgProcess(homes.alice, flaky, id);
    const bob = dkgProcess(homes.bob, url, id);
    const carol = dkgProcess(homes.carol, url, id);
    expect(await alice.exited, alice.stderr).toBe(0);
    expect(await bob.exited, bob.stderr).toBe(0);
    expect(await carol.exited, carol.stderr).toBe(0);
    expect((await ceremonyState(url, id)).status).toBe("complete");
  });

  for (const variant of [
    {
      what: "threshold",
      edit: (s: string) => s.replace("threshold: 2", "threshold: 3"),
      expect: /threshold is 3, my ca-config says 2/,
    },
    {
      what: "roster",
      edit: (s: string) =>
        s.replace(/(- name: carol\n\s+signingKey: )\S+/, "$1" + Buffer.alloc(32, 7).toString("base64url")),
      expect: /roster has different keys for carol/,
    },
    {
      what: "CA subject",
      edit: (s: string) => s.replace("CN=tca Example Root CA", "CN=Evil Root"),
      expect: /CA subject is "CN=Evil Root/,
    },
  ]) {
    it(`custodians refuse a coordinator announcing a different ${variant.what}`, async () => {
      const dir = sb.tempDir();
      const coordinatorConfig = join(dir, "coordinator-ca.yaml");
      writeFileSync(coordinatorConfig, variant.edit(readFileSync(EXAMPLE, "utf8")));
      const { url } = await sb.serve(coordinatorConfig, join(dir, "db.sqlite"));
      const homes = sb.fixtureHomes(EXAMPLE);
      const id = await startCeremony(url);
      const alice = dkgProcess(homes.alice, url, id);
      expect(await alice.exited).toBe(3);
      expect(alice.stderr).toMatch(variant.expect);
      expect(alice.stderr).toMatch(/^tca: error: refusing ceremony \S+: /m);
      const state = await ceremonyState(url, id);
      expect(state.status).toBe("failed");
      expect(state.failure!.reason).toMatch(/^alice aborted: announcement does not match/);
    });
  }
});
