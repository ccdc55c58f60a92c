import type { Command } from "commander";
import { z } from "zod";
import { CoordinatorClient } from "../../custodian/client.ts";
import { HttpClient, plainHttpTokenProblem } from "../../protocol/http-client.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { interruptible, printResult, progress, runCommand, UsageError } from "../output.ts";
import { readToken } from "../token.ts";
import { collectUrls, COORDINATOR_FLAG, requiredCoordinatorUrls } from "../coordinators.ts";
import { CustodianError } from "../../custodian/errors.ts";

const Changes = z.object({ seq: z.number().int().min(0) });
const View = z.object({
  id: z.string(),
  status: z.string(),
  failure: z.object({ reason: z.string(), culprits: z.array(z.string()) }).nullable(),
  received: z.record(z.string(), z.array(z.string())),
  announcement: z
    .object({ threshold: z.number(), custodians: z.array(z.object({ name: z.string() }).passthrough()) })
    .passthrough(),
});

/** An admin's client: verified against --ca-file / $TCA_CA_FILE, else the system's roots. */
/** The admin's client: every call carries the admin token, so never over plain HTTP off this host. */
function adminClient(o: { coordinator?: string[]; caFile?: string }): CoordinatorClient {
  const urls = requiredCoordinatorUrls(o.coordinator);
  const plain = plainHttpTokenProblem(urls);
  if (plain) throw new UsageError(plain);
  const tls = caFileTls(o.caFile);
  return new CoordinatorClient(new HttpClient(urls, tls ? { tls } : {}));
}

/** The admin token: --token-file, else $TCA_ADMIN_TOKEN ($TCA_TOKEN is the requester's). */
function adminToken(file?: string): string {
  return readToken(file, "TCA_ADMIN_TOKEN", "an admin token");
}

export function registerCeremony(program: Command): void {
  const cer = program.command("ceremony").description("the key ceremony that creates the CA key (admin)");
  cer
    .command("start")
    .description("announce a new DKG ceremony to the custodians named in ca-config")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--wait", "wait until the ceremony completes or fails, showing progress")
    .option("--json", "print the ceremony as JSON")
    .action(
      (o: { coordinator?: string[]; caFile?: string; tokenFile?: string; wait?: boolean; json?: boolean }) =>
        runCommand(async () => {
          const client = adminClient(o);
          const token = adminToken(o.tokenFile);
          let v = await client.post("/api/v1/ceremonies", {}, View, token);
          progress(
            `ceremony ${v.id} started: ${v.announcement.threshold}-of-${v.announcement.custodians.length}`,
          );
          const id = v.id;
          if (o.wait)
            v = await interruptible(
              () =>
                `stopped following ceremony ${id}; it goes on without this command — see it with: tca ceremony status ${id}`,
              () => waitForCeremony(client, id, undefined, token),
            );
          printResult(!!o.json, v, `ceremony ${v.id}: ${v.status}`);
        }),
    );
  cer
    .command("status")
    .description("show a ceremony's stage and who has spoken")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .argument("[id]", "ceremony id", "current")
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--json", "print as JSON")
    .action(
      (id: string, o: { coordinator?: string[]; caFile?: string; tokenFile?: string; json?: boolean }) =>
        runCommand(async () => {
          const v = await adminClient(o).get(`/api/v1/ceremonies/${encodeURIComponent(id)}`, View, {
            token: adminToken(o.tokenFile),
          });
          const f = v.failure
            ? `\nfailed: ${v.failure.reason}${v.failure.culprits.length ? ` (culprit: ${v.failure.culprits.join(", ")})` : ""}`
            : "";
          printResult(!!o.json, v, `ceremony ${v.id}: ${v.status}${f}`);
        }),
    );
}

/**
 * Follows a ceremony until it completes or fails, printing each change of stage. It sleeps on the
 * coordinator's change feed (GET /api/v1/changes long-poll), so it sees each step as it happens.
 * The reads carry the admin token (docs/security-model.md).
 */
export async function waitForCeremony(
  client: CoordinatorClient,
  id: string,
  signal?: AbortSignal,
  token?: string,
): Promise<z.infer<typeof View>> {
  let last = "";
  const o = { ...(signal ? { signal } : {}), ...(token ? { token } : {}) };
  let seq = (await client.get("/api/v1/changes?wait=0", Changes, o)).seq;
  for (;;) {
    const v = await client.get(`/api/v1/ceremonies/${id}`, View, o);
    const line = `${v.status}: round1 ${v.received["dkg/round1"]?.length ?? 0}, round2 ${v.received["dkg/round2"]?.length ?? 0}, confirmed ${v.received["dkg/confirm"]?.length ?? 0} of ${v.announcement.custodians.length}`;
    if (line !== last) progress(line);
    last = line;
    if (v.status === "complete") return v;
    if (v.status === "failed")
      throw new CustodianError(
        "CEREMONY_FAILED",
        `ceremony failed: ${v.failure?.reason}`,
        v.failure?.culprits ?? [],
      );
    seq = (await client.get(`/api/v1/changes?after=${seq}&wait=20`, Changes, o)).seq;
  }
}
