// `--coordinator` on the CLI: several URLs, comma-separated or repeated, or $TCA_COORDINATOR (which
// `tca ceremony` reads too); a URL that is not http(s) is a usage error naming it; the commands fail
// over like the HTTP client underneath.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { closeAll, json, refusedUrl, startServer } from "../protocol/http-servers.ts";

const sb = new Sandbox();
afterEach(closeAll);
afterAll(() => sb.cleanup());

const dkg = json(200, {
  id: "c1",
  status: "complete",
  failure: null,
  received: {},
  announcement: { threshold: 2, custodians: [{ name: "alice" }, { name: "bob" }, { name: "carol" }] },
});
const noLifecycle = json(404, {
  status: 404,
  code: "NOT_FOUND",
  detail: "no lifecycle ceremony has been started",
});
/** The DKG's view; no refresh, reshare or repair has run (`status` without an id asks for both). */
const ceremony: Parameters<typeof startServer>[0] = (req, res, body, hit) =>
  (req.url?.startsWith("/api/v1/lifecycle/") ? noLifecycle : dkg)(req, res, body, hit);

describe("--coordinator with several URLs", () => {
  it("tca request: a URL that is not http(s) is a usage error that names it", async () => {
    const token = join(sb.tempDir(), "token");
    writeFileSync(token, "t\n");
    const p = sb.tca([
      "request",
      "svc.example.internal",
      "--token-file",
      token,
      "--coordinator",
      "http://127.0.0.1:1,ftp://replica-b",
    ]);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/--coordinator: "ftp:\/\/replica-b" is not an http:\/\/ or https:\/\/ URL/);
  });

  it("tca request: a bad $TCA_COORDINATOR is named as such", async () => {
    const token = join(sb.tempDir(), "token");
    writeFileSync(token, "t\n");
    const p = sb.tca(["request", "svc.example.internal", "--token-file", token], {
      TCA_COORDINATOR: "http://127.0.0.1:1, not a url",
    });
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/\$TCA_COORDINATOR: "not a url" is not a URL/);
  });

  it("tca ceremony status: a repeated --coordinator fails over to the replica that answers", async () => {
    const down = await refusedUrl();
    const up = await startServer(ceremony);
    const p = sb.tca(["ceremony", "status", "--coordinator", down, "--coordinator", up.url], {
      TCA_ADMIN_TOKEN: "an-admin-token-for-the-test",
    });
    expect(await p.exited, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/ceremony c1: complete/);
    expect(up.hits).toEqual(["GET /api/v1/ceremonies/current", "GET /api/v1/lifecycle/current"]);
  });

  it("tca ceremony status reads $TCA_COORDINATOR, and names every URL when none answers (exit 4)", async () => {
    const one = await refusedUrl();
    const two = await refusedUrl();
    const p = sb.tca(["ceremony", "status"], {
      TCA_COORDINATOR: `${one},${two}`,
      TCA_ADMIN_TOKEN: "an-admin-token-for-the-test",
    });
    expect(await p.exited).toBe(4);
    expect(p.stderr).toContain(`cannot reach the coordinator (tried ${one}, ${two})`);

    const up = await startServer(ceremony);
    const q = sb.tca(["ceremony", "status", "--json"], {
      TCA_COORDINATOR: `${one},${up.url}`,
      TCA_ADMIN_TOKEN: "an-admin-token-for-the-test",
    });
    expect(await q.exited, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({ id: "c1", status: "complete" });
  });

  it("tca ceremony status without any coordinator is a usage error", async () => {
    const p = sb.tca(["ceremony", "status"], { TCA_COORDINATOR: "" });
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/a coordinator is needed/);
  });

  it("tca custodian dkg: a bad URL in the list is a usage error before anything else", async () => {
    const p = sb.tca([
      "custodian",
      "dkg",
      "--home",
      join(sb.tempDir(), "nohome"),
      "--coordinator",
      "http://127.0.0.1:1",
      "--coordinator",
      "mailto:x@y",
    ]);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toMatch(/"mailto:x@y" is not an http/);
  });
});
