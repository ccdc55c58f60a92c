// A rejected request never issues, and its status says who rejected it and why. Custodians act as
// separate `tca custodian` processes against a real `tca dev` CA; the review a custodian sees
// (`show --json`) names the same TBS hash and names as the request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, type Proc } from "../helpers/processes.ts";
import {
  custodianCli,
  KEY_ARGS,
  makeCsr,
  requestView,
  startDevCa,
  submitCsr,
  type DevCa,
} from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let dir: string;

beforeAll(async () => {
  ca = await startDevCa(sb);
  dir = sb.tempDir("tca-reject-");
});
afterAll(() => sb.cleanup());

/**
 * `tca custodian <verb>` that only reads (requests, show): it still unlocks the keystore, to sign
 * its reads with the custodian's identity key (docs/security-model.md).
 */
function custodianReadOnly(name: string, args: string[]): Proc {
  const [verb, ...rest] = args;
  const h = ca.home(name);
  return sb.tca(["custodian", verb!, ...rest, "--home", h.home, "--passphrase-file", h.passphraseFile]);
}

async function finished(p: Proc): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

async function submit(name: string, sans: string): Promise<string> {
  const { csrPem } = makeCsr(dir, name, {
    newkey: KEY_ARGS.ed25519!,
    subject: `/CN=${name}.example.internal`,
    sans,
  });
  const res = await submitCsr(ca, csrPem, "server");
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return String(res.body.id);
}

describe("issuance: rejection", () => {
  it("one custodian's rejection is final: status says who and why, later approvals fail, no certificate", async () => {
    const id = await submit("rejected", "DNS:rejected.example.internal");
    expect((await requestView(ca, id)).status).toBe("pending");

    const reject = await finished(custodianCli(sb, ca, "bob", ["reject", id, "--reason", "not our service"]));
    expect(reject.code, reject.stderr).toBe(0);
    expect(reject.stdout).toMatch(/rejected/);

    const view = await requestView(ca, id);
    expect(view.status).toBe("rejected");
    expect(view.rejection).toEqual({ by: "bob", reason: "not our service" });
    expect(view.approvals).toEqual([
      expect.objectContaining({ custodian: "bob", decision: "reject", reason: "not our service" }),
    ]);

    for (const name of ["alice", "carol"]) {
      const approve = await finished(custodianCli(sb, ca, name, ["approve", id, "--yes", "--no-wait"]));
      expect(
        approve.code,
        `${name} approving a rejected request:\n${approve.stdout}${approve.stderr}`,
      ).not.toBe(0);
      expect(approve.stderr).toMatch(/rejected/);
      expect((await requestView(ca, id)).status).toBe("rejected");
    }

    // Rejecting twice is refused, too, and changes nothing.
    const again = await finished(custodianCli(sb, ca, "carol", ["reject", id, "--reason", "me too"]));
    expect(again.code).not.toBe(0);
    const after = await requestView(ca, id);
    expect(after.rejection).toEqual({ by: "bob", reason: "not our service" });
    expect(after.approvals).toHaveLength(1);
    expect(after.signing).toBeNull();

    const cert = await fetch(`${ca.url}/api/v1/requests/${id}/certificate`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    expect(cert.status).toBe(409);
    expect(cert.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const problem = (await cert.json()) as { detail: string; status: unknown; requestStatus: string };
    expect(problem.detail).toMatch(/rejected/);
    // RFC 9457: `status` is the HTTP status code; the request's own status has its own member.
    expect(problem.status).toBe(409);
    expect(problem.requestStatus).toBe("rejected");

    // It is listed as rejected, not pending.
    const pending = (
      (await (
        await fetch(`${ca.url}/api/v1/requests?status=pending`, {
          headers: { authorization: `Bearer ${ca.adminToken}` },
        })
      ).json()) as {
        requests: { id: string }[];
      }
    ).requests;
    expect(pending.map((r) => r.id)).not.toContain(id);
    const rejected = (
      (await (
        await fetch(`${ca.url}/api/v1/requests?status=rejected`, {
          headers: { authorization: `Bearer ${ca.adminToken}` },
        })
      ).json()) as {
        requests: { id: string }[];
      }
    ).requests;
    expect(rejected.map((r) => r.id)).toContain(id);
  });

  it("`custodian requests --json` lists pending requests; `show --json` re-derives the same TBS", async () => {
    const sans = "DNS:review.example.internal,DNS:api.example.internal,IP:10.1.2.3";
    const id = await submit("review", sans);
    const view = await requestView(ca, id);

    const list = await finished(custodianReadOnly("alice", ["requests", "--json"]));
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { id: string; status: string }[];
    expect(listed.map((r) => r.id)).toContain(id);
    expect(listed.every((r) => r.status === "pending")).toBe(true);

    const show = await finished(custodianReadOnly("alice", ["show", id, "--json"]));
    expect(show.code, show.stderr).toBe(0);
    const review = JSON.parse(show.stdout) as {
      request: { id: string; tbsSha256: string };
      tbs: { tbsSha256: string; sans: { type: string; value: string }[]; subject: string; serialHex: string };
      problem?: string;
    };
    expect(review.problem).toBeUndefined();
    expect(review.request.id).toBe(id);
    expect(review.tbs.tbsSha256).toBe(view.tbsSha256);
    expect(review.tbs.sans).toEqual([
      { type: "dns", value: "review.example.internal" },
      { type: "dns", value: "api.example.internal" },
      { type: "ip", value: "10.1.2.3" },
    ]);
    expect(review.tbs.sans).toEqual(view.sans);
    expect(review.tbs.subject).toMatch(/CN=review\.example\.internal/);
    expect(review.tbs.serialHex.replace(/^0+/, "")).toBe(String(view.serial).replace(/^0+/, ""));

    // Text output names the request and its TBS hash, for a person.
    const text = await finished(custodianReadOnly("bob", ["show", id]));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(id);
    expect(text.stdout).toContain(view.tbsSha256 as string);

    // A request that does not exist: a clear error and a non-zero exit.
    const missing = await finished(
      custodianReadOnly("alice", ["show", "00000000-0000-0000-0000-000000000000"]),
    );
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no request/);
  });
});
