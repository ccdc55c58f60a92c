// CoordinatorClient over the one HTTP client: a signed envelope is idempotent (the coordinator
// refuses a replayed id), so it goes to the next coordinator after a lost answer; other POSTs do
// not; errors keep the custodian's codes (exit codes).
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { CoordinatorClient } from "../../src/custodian/client.ts";
import { CustodianError } from "../../src/custodian/errors.ts";
import { exitCodeFor } from "../../src/cli/output.ts";
import { closeAll, dropAfterBody, json, problem, refusedUrl, startServer } from "../protocol/http-servers.ts";

afterEach(closeAll);

const envelope = { payload: "eyJ2IjoxfQ", signature: "A".repeat(86) };
const Any = z.unknown();

async function caught(p: Promise<unknown>): Promise<CustodianError & { status?: number }> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CustodianError);
    return e as CustodianError & { status?: number };
  }
  throw new Error("expected a CustodianError");
}

describe("CoordinatorClient failover", () => {
  it("resends a signed envelope to the next coordinator after a dropped connection", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer(json(202, {}));
    await new CoordinatorClient(`${a.url},${b.url}`).post("/api/v1/requests/r1/approvals", envelope, Any);
    expect(b.hits).toEqual(["POST /api/v1/requests/r1/approvals"]);
    expect(JSON.parse(b.bodies[0]!)).toEqual(envelope);
  });

  it("does not resend a POST that is not an envelope (ceremony start) after a dropped connection", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer(json(201, {}));
    const e = await caught(
      new CoordinatorClient([a.url, b.url]).post("/api/v1/ceremonies", {}, Any, "admin"),
    );
    expect(e.code).toBe("COORDINATOR_UNREACHABLE");
    expect(b.hits).toEqual([]);
  });

  it("maps errors to the custodian's codes: unreachable exits 4, a refusal carries its status", async () => {
    const one = await refusedUrl();
    const two = await refusedUrl();
    const e = await caught(new CoordinatorClient([one, two]).get("/api/v1/changes", Any));
    expect(e.code).toBe("COORDINATOR_UNREACHABLE");
    expect(e.message).toContain(`cannot reach the coordinator (tried ${one}, ${two})`);
    expect(exitCodeFor(e)).toBe(4);

    const c = await startServer(problem(409, "CONFLICT", "replayed envelope"));
    const d = await startServer(json(200, {}));
    const r = await caught(new CoordinatorClient([c.url, d.url]).post("/p", envelope, Any));
    expect(r.code).toBe("COORDINATOR_ERROR");
    expect(r.status).toBe(409);
    expect(r.message).toBe("coordinator answered 409 to POST /p: replayed envelope");
    expect(d.hits).toEqual([]);
  });

  it("reads PEM text through the same failover", async () => {
    const b = await startServer((_req, res) => res.end("-----BEGIN CERTIFICATE-----\n"));
    const client = new CoordinatorClient([await refusedUrl(), b.url]);
    expect(await client.text("/ca.pem")).toBe("-----BEGIN CERTIFICATE-----\n");
    expect(client.baseUrl).toBe(b.url);
  });
});
