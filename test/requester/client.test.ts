// RequesterClient over the one HTTP client: a submit goes to the next coordinator only when the
// first certainly did not get it, and errors keep the requester's kinds (exit codes).
import { afterEach, describe, expect, it } from "vitest";
import { RequesterClient } from "../../src/requester/client.ts";
import { RequesterError } from "../../src/requester/errors.ts";
import { closeAll, dropAfterBody, json, problem, refusedUrl, startServer } from "../protocol/http-servers.ts";

afterEach(closeAll);

const submitted = json(202, { id: "r1", status: "pending", missing: 2 });
const submission = { csr: "-----BEGIN CERTIFICATE REQUEST-----", profile: "server" };

async function caught(p: Promise<unknown>): Promise<RequesterError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RequesterError);
    return e as RequesterError;
  }
  throw new Error("expected a RequesterError");
}

describe("RequesterClient failover", () => {
  it("submits to the second coordinator when the first refuses the connection", async () => {
    const b = await startServer(submitted);
    const client = new RequesterClient(`${await refusedUrl()},${b.url}`, "tok");
    expect(await client.submit(submission)).toMatchObject({ id: "r1", status: "pending" });
    expect(b.hits).toEqual(["POST /api/v1/requests"]);
    expect(client.baseUrl).toBe(b.url);
  });

  it("does not submit twice: a dropped connection after sending is reported, the next coordinator untouched", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer(submitted);
    const e = await caught(new RequesterClient([a.url, b.url], "tok").submit(submission));
    expect(e.kind).toBe("UNREACHABLE");
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/may have been created/);
    expect(a.hits).toEqual(["POST /api/v1/requests"]);
    expect(b.hits).toEqual([]);
  });

  it("fetches a chain through another coordinator when one drops the connection (GETs are idempotent)", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/pem-certificate-chain" });
      res.end("-----BEGIN CERTIFICATE-----\n");
    });
    const client = new RequesterClient([a.url, b.url], "tok");
    expect(await client.chain("r1")).toBe("-----BEGIN CERTIFICATE-----\n");
    expect(b.hits).toEqual(["GET /api/v1/requests/r1/certificate"]);
  });

  it("keeps the coordinator's 4xx detail as the message, exit code 1, without failing over", async () => {
    const a = await startServer(problem(403, "FORBIDDEN", "requester dev may not use profile intermediate"));
    const b = await startServer(submitted);
    const e = await caught(new RequesterClient([a.url, b.url], "tok").submit(submission));
    expect(e.kind).toBe("SERVER");
    expect(e.status).toBe(403);
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe("requester dev may not use profile intermediate");
    expect(b.hits).toEqual([]);
  });

  it("says which coordinators it tried when none answers", async () => {
    const one = await refusedUrl();
    const two = await refusedUrl();
    const e = await caught(new RequesterClient([one, two], "tok").chain("r1"));
    expect(e.kind).toBe("UNREACHABLE");
    expect(e.message).toContain(`cannot reach the coordinator (tried ${one}, ${two})`);
  });
});
