import type { Command } from "commander";
import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { z } from "zod";
import { loadCaConfig } from "../../config/load.ts";
import { CustodianHome } from "../../custodian/home.ts";
import { signRoster } from "../../custodian/lifecycle/sign-roster.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import {
  LifecycleViewSchema,
  lifecycleStages,
  participants,
  type LifecycleStage,
  type LifecycleStart,
  type LifecycleView,
} from "../../protocol/lifecycle.ts";
import { rosterDiff, rosterDigest, rosterOf } from "../../protocol/roster.ts";
import { CoordinatorClient } from "../../custodian/client.ts";
import { HttpClient, plainHttpTokenProblem } from "../../protocol/http-client.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { registerIntermediate } from "./ceremony-intermediate.ts";
import { interruptible, printResult, progress, runCommand, UsageError } from "../output.ts";
import { readToken } from "../token.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls, requiredCoordinatorUrls } from "../coordinators.ts";
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
  const cer = program
    .command("ceremony")
    .description("key ceremonies: create the CA key, then refresh, reshare or repair its shares (admin)");
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
    .description("show a ceremony's stage and who has spoken: the DKG's, or a refresh, reshare or repair")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .argument(
      "[id]",
      "ceremony id (default: the current DKG ceremony, and the current lifecycle ceremony)",
      "current",
    )
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--json", "print as JSON")
    .action(
      (id: string, o: { coordinator?: string[]; caFile?: string; tokenFile?: string; json?: boolean }) =>
        runCommand(async () => {
          const client = adminClient(o);
          const token = adminToken(o.tokenFile);
          const dkg = await orNotFound(() =>
            client.get(`/api/v1/ceremonies/${encodeURIComponent(id)}`, View, { token }),
          );
          // A lifecycle ceremony's id, or (with no id) the current one next to the DKG's.
          const lc =
            dkg && id !== "current"
              ? undefined
              : await orNotFound(() =>
                  client.get(`/api/v1/lifecycle/${encodeURIComponent(id)}`, LifecycleViewSchema, { token }),
                );
          if (!dkg && !lc) throw new UsageError(`no ceremony ${id}`);
          const lines: string[] = [];
          if (dkg) {
            const f = dkg.failure
              ? `\nfailed: ${dkg.failure.reason}${dkg.failure.culprits.length ? ` (culprit: ${dkg.failure.culprits.join(", ")})` : ""}`
              : "";
            lines.push(`ceremony ${dkg.id}: ${dkg.status}${f}`);
          }
          if (lc) lines.push(lifecycleStatusText(lc));
          // JSON: the DKG's view as ever; a lifecycle ceremony's when that is what the id names.
          printResult(!!o.json, dkg ?? lc, lines.join("\n"));
        }),
    );

  registerLifecycleCommands(cer);
  registerIntermediate(cer); // csr, install-ca-cert (docs/intermediate.md)
}

/** `call`, or undefined when the coordinator answers 404. */
async function orNotFound<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof CustodianError && (e as { status?: number }).status === 404) return undefined;
    throw e;
  }
}

function lifecycleStatusText(v: LifecycleView): string {
  const line = lifecycleProgress(v);
  if (v.status === "complete") return lifecycleOutcome(v);
  if (v.status === "failed") return lifecycleFailure(v).message;
  return `${v.plan.kind} ${v.id}: ${v.status}${line ? ` — ${line}` : ""}`;
}

interface AdminOpts {
  coordinator?: string[];
  caFile?: string;
  tokenFile?: string;
  wait?: boolean;
  json?: boolean;
}

function adminOptions(cmd: Command): Command {
  return cmd
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--wait", "wait until the ceremony completes or fails, showing progress")
    .option("--json", "print the ceremony as JSON");
}

/** `--dealers a,b,c`: roster names, each once. */
function nameList(flag: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const names = v
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  const bad = names.find((n) => !/^[a-z][a-z0-9-]{0,31}$/.test(n));
  if (bad !== undefined) throw new UsageError(`${flag}: "${bad}" is not a custodian name`);
  if (names.length === 0) throw new UsageError(`${flag}: no names`);
  if (new Set(names).size !== names.length) throw new UsageError(`${flag}: a name appears twice`);
  return names;
}

/**
 * The digest of the roster in the new ca-config at `path`: what a reshare or repair names. Only the
 * digest goes to the coordinator, which must already hold that roster with t signatures of the
 * roster in force (`tca ceremony sign-roster`); the rosters themselves come from ca-config text.
 */
function newRosterDigest(path: string): string {
  return rosterDigest(rosterOf(loadCaConfig(path).config));
}

/** Starts a lifecycle ceremony, then (with --wait) follows it to its end state. */
async function runLifecycle(o: AdminOpts, body: LifecycleStart, configPath?: string): Promise<void> {
  const client = adminClient(o);
  const token = adminToken(o.tokenFile);
  let v = await client.post("/api/v1/lifecycle", body, LifecycleViewSchema, token);
  progress(lifecycleStarted(v));
  const id = v.id;
  if (o.wait)
    v = await interruptible(
      () =>
        `stopped following ${body.kind} ${id}; it goes on without this command — see it with: tca ceremony status ${id}`,
      () => waitForLifecycle(client, id, undefined, token),
    );
  printResult(
    !!o.json,
    v,
    v.status === "complete" ? lifecycleOutcome(v, configPath) : `${v.plan.kind} ${v.id}: ${v.status}`,
  );
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** refresh, reshare, repair (admin) and sign-roster (a custodian): docs/key-lifecycle.md. */
function registerLifecycleCommands(cer: Command): void {
  adminOptions(
    cer
      .command("refresh")
      .description(
        "give every custodian a new share of the same CA key (the old shares stop working; the CA key and certificates stay)",
      ),
  ).action((o: AdminOpts) => runCommand(() => runLifecycle(o, { kind: "refresh" })));

  adminOptions(
    cer
      .command("reshare")
      .description(
        "move the CA key to the committee and threshold of a new ca-config signed by t custodians (add or remove custodians, change t)",
      )
      .requiredOption(
        "--config <path>",
        "the new ca-config (its roster must carry t signatures: tca ceremony sign-roster)",
      )
      .option(
        "--dealers <names>",
        "the old custodians that deal, exactly t, comma-separated (default: chosen by the coordinator)",
      ),
  ).action((o: AdminOpts & { config: string; dealers?: string }) =>
    runCommand(() => {
      const dealers = nameList("--dealers", o.dealers);
      return runLifecycle(
        o,
        { kind: "reshare", rosterDigest: newRosterDigest(o.config), ...(dealers ? { dealers } : {}) },
        o.config,
      );
    }),
  );

  adminOptions(
    cer
      .command("repair")
      .description(
        "restore a lost share for a custodian with new identity keys, from t helpers, without anyone learning it",
      )
      .requiredOption("--custodian <name>", "whose share is lost")
      .requiredOption(
        "--config <path>",
        "the new ca-config with that custodian's new identity keys (signed by t custodians: tca ceremony sign-roster)",
      )
      .option(
        "--helpers <names>",
        "the custodians that help, exactly t, comma-separated (default: chosen by the coordinator)",
      ),
  ).action((o: AdminOpts & { custodian: string; config: string; helpers?: string }) =>
    runCommand(() => {
      const [lost] = nameList("--custodian", o.custodian)!;
      const helpers = nameList("--helpers", o.helpers);
      return runLifecycle(
        o,
        {
          kind: "repair",
          lost: lost!,
          rosterDigest: newRosterDigest(o.config),
          ...(helpers ? { helpers } : {}),
        },
        o.config,
      );
    }),
  );

  cer
    .command("cancel")
    .description(
      "end a stuck refresh, reshare or repair (no one blamed; nothing it made is used, the shares in force keep working)",
    )
    .argument("<id>", 'the lifecycle ceremony id ("current": the latest)')
    .option("--reason <text>", "why, for the record (the audit log)")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--json", "print the ceremony as JSON")
    .action((id: string, o: AdminOpts & { reason?: string }) =>
      runCommand(async () => {
        const reason = o.reason?.trim();
        if (o.reason !== undefined && !reason) throw new UsageError("--reason: empty");
        const client = adminClient(o);
        const token = adminToken(o.tokenFile);
        const v = await client.post(
          `/api/v1/lifecycle/${encodeURIComponent(id)}/cancel`,
          reason ? { reason } : {},
          LifecycleViewSchema,
          token,
        );
        printResult(!!o.json, v, lifecycleStatusText(v));
      }),
    );

  cer
    .command("sign-roster")
    .description(
      "as a custodian of the roster in force, sign the roster of a new ca-config (t signatures let a reshare or repair use it)",
    )
    .requiredOption("--home <dir>", "custodian data directory")
    .requiredOption("--config <path>", "the new ca-config whose roster to sign")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or the ones from the ceremony)",
      collectUrls,
    )
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--yes", "sign without asking (required when stdin is not a terminal)")
    .option("--json", "print the statement, the signature and the count as JSON")
    .action(
      (o: {
        home: string;
        config: string;
        coordinator?: string[];
        passphraseFile?: string;
        yes?: boolean;
        json?: boolean;
      }) =>
        runCommand(async () => {
          if (!o.yes && !process.stdin.isTTY)
            throw new UsageError("stdin is not a terminal: pass --yes to sign without a prompt");
          const home = new CustodianHome(resolve(o.home));
          home.identity();
          const newConfig = loadCaConfig(o.config);
          const url = home.coordinatorUrl(coordinatorUrls(o.coordinator));
          const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
          const out = await signRoster({
            home,
            passphrase,
            newConfig,
            coordinatorUrl: url,
            progress,
            confirm: async (diff, statement) => {
              progress(
                [
                  `new roster for CA key ${statement.caKeyId}:`,
                  ...diff.map((l) => `  ${l}`),
                  `  roster ${statement.from} → ${statement.to}`,
                ].join("\n"),
              );
              return o.yes === true || (await confirm("sign this roster?"));
            },
          });
          printResult(
            !!o.json,
            out,
            `signed: ${out.validSigners.length} of ${out.needed} signatures${out.approved ? " (enough: the change can be used)" : ""}`,
          );
        }),
    );
}

/** What every ceremony view has: how it stands, and why it failed. */
interface Followable {
  status: string;
  failure: { reason: string; culprits: string[] } | null;
}

/**
 * Follows a ceremony (the DKG's or a lifecycle ceremony's) until it completes or fails, printing
 * `line(view)` each time it changes. It sleeps on the coordinator's change feed (GET
 * /api/v1/changes long-poll), so it sees each step as it happens. The reads carry the admin token
 * (docs/security-model.md). On failure it throws `failed(view)`.
 */
export async function followCeremony<V extends Followable>(
  client: CoordinatorClient,
  o: {
    path: string;
    schema: z.ZodType<V>;
    line: (v: V) => string;
    failed: (v: V) => Error;
    signal?: AbortSignal;
    token?: string;
  },
): Promise<V> {
  let last = "";
  const call = { ...(o.signal ? { signal: o.signal } : {}), ...(o.token ? { token: o.token } : {}) };
  let seq = (await client.get("/api/v1/changes?wait=0", Changes, call)).seq;
  for (;;) {
    const v = await client.get(o.path, o.schema, call);
    const line = o.line(v);
    if (line && line !== last) progress(line);
    last = line;
    if (v.status === "complete") return v;
    if (v.status === "failed") throw o.failed(v);
    seq = (await client.get(`/api/v1/changes?after=${seq}&wait=20`, Changes, call)).seq;
  }
}

/** Follows the DKG ceremony `id` (`tca ceremony start --wait`, `tca dev`). */
export async function waitForCeremony(
  client: CoordinatorClient,
  id: string,
  signal?: AbortSignal,
  token?: string,
): Promise<z.infer<typeof View>> {
  return followCeremony(client, {
    path: `/api/v1/ceremonies/${encodeURIComponent(id)}`,
    schema: View,
    line: (v) =>
      `${v.status}: round1 ${v.received["dkg/round1"]?.length ?? 0}, round2 ${v.received["dkg/round2"]?.length ?? 0}, confirmed ${v.received["dkg/confirm"]?.length ?? 0} of ${v.announcement.custodians.length}`,
    failed: (v) =>
      new CustodianError(
        "CEREMONY_FAILED",
        `ceremony failed: ${v.failure?.reason}`,
        v.failure?.culprits ?? [],
      ),
    ...(signal ? { signal } : {}),
    ...(token ? { token } : {}),
  });
}

/** Follows the lifecycle ceremony `id` (refresh, reshare, repair), one line per step. */
export async function waitForLifecycle(
  client: CoordinatorClient,
  id: string,
  signal?: AbortSignal,
  token?: string,
): Promise<LifecycleView> {
  return followCeremony(client, {
    path: `/api/v1/lifecycle/${encodeURIComponent(id)}`,
    schema: LifecycleViewSchema,
    line: lifecycleProgress,
    failed: lifecycleFailure,
    ...(signal ? { signal } : {}),
    ...(token ? { token } : {}),
  });
}

const STAGE_WORDS: Record<LifecycleStage["status"], string> = {
  round1: "round 1 (ceremony keys and commitments)",
  "round1-ack": "round 1 checked by",
  round2: "round 2 (sealed shares) from",
  round3: "round 3 (repair sums) from",
  confirm: "confirmed",
};

/** "round 1 (…): 3 of 5", "confirmed 2 of 5": the stage in progress and how many have sent it. */
export function lifecycleProgress(v: LifecycleView): string {
  const stage = lifecycleStages(v.plan).find((s) => s.status === v.status);
  if (!stage) return "";
  const sent = (v.received[stage.type] ?? []).filter((n) => stage.senders.includes(n)).length;
  const words = STAGE_WORDS[stage.status];
  return stage.status === "confirm" || stage.status === "round1-ack"
    ? `${words} ${sent} of ${stage.senders.length}`
    : `${words}: ${sent} of ${stage.senders.length}`;
}

/** A failed lifecycle ceremony as the CLI's error: what failed, who is to blame, what still works. */
export function lifecycleFailure(v: LifecycleView): CustodianError {
  const culprits = v.failure?.culprits ?? [];
  return new CustodianError(
    "CEREMONY_FAILED",
    `${v.plan.kind} ${v.id} failed: ${v.failure?.reason ?? "no reason given"}` +
      `${culprits.length ? `; culprit: ${culprits.join(", ")}` : ""}; every old share still works`,
  );
}

/** The end state of a completed lifecycle ceremony, in words. */
export function lifecycleOutcome(v: LifecycleView, configPath?: string): string {
  const epoch = v.result?.epoch ?? v.plan.toEpoch;
  const same = "the CA key and every certificate are unchanged";
  const restart = `restart coordinators and agents with ${configPath ?? "the new ca-config"}`;
  const { oldRoster: from, newRoster: to } = v.plan;
  switch (v.plan.kind) {
    case "refresh":
      return `refresh complete: epoch ${epoch}; every custodian holds a new share; ${same}`;
    case "reshare":
      return (
        `reshare complete: epoch ${epoch}; ${from.threshold}-of-${from.custodians.length} → ` +
        `${to.threshold}-of-${to.custodians.length} (${rosterDiff(from, to).slice(0, -1).join("; ") || "same members"}); ` +
        `${same}; the removed custodians' shares are refused from now on; ${restart}`
      );
    case "repair":
      return `repair complete: ${v.plan.lost} holds its share again (epoch ${epoch}); ${same}; ${restart}`;
  }
}

function lifecycleStarted(v: LifecycleView): string {
  const p = v.plan;
  const shape = (r: LifecycleView["plan"]["oldRoster"]) => `${r.threshold}-of-${r.custodians.length}`;
  const what =
    p.kind === "refresh"
      ? `${shape(p.oldRoster)}, epoch ${p.fromEpoch} → ${p.toEpoch}`
      : p.kind === "reshare"
        ? `${shape(p.oldRoster)} → ${shape(p.newRoster)}, epoch ${p.fromEpoch} → ${p.toEpoch}; dealers ${p.dealers.join(", ")}`
        : `restoring ${p.lost}'s share; helpers ${p.dealers.join(", ")}`;
  return `${p.kind} ${v.id} started: ${what}; each of ${participants(p).join(", ")} runs: tca custodian ceremony ${v.id} --home DIR${p.kind === "refresh" ? "" : " --config NEW.yaml"}`;
}
