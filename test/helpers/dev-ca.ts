// A ready local CA for end-to-end tests: `tca dev` as a real process (coordinator on loopback,
// custodians that ran the DKG), plus helpers to submit CSRs and run custodian CLI processes.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import type { Proc, Sandbox } from "./processes.ts";

export interface DevCa {
  dir: string;
  url: string;
  token: string;
  adminToken: string;
  rootPath: string;
  proc: Proc;
  home(name: string): { home: string; passphraseFile: string };
}

export async function startDevCa(
  sb: Sandbox,
  o: {
    custodians?: number;
    threshold?: number;
    env?: NodeJS.ProcessEnv;
    args?: string[];
    agents?: boolean;
  } = {},
): Promise<DevCa> {
  const dir = join(sb.tempDir("tca-dev-"), "ca");
  const proc = sb.tca(
    [
      "dev",
      "--dir",
      dir,
      "--port",
      "0",
      "--custodians",
      String(o.custodians ?? 3),
      "--threshold",
      String(o.threshold ?? 2),
      ...(o.agents ? [] : ["--no-agents"]),
      ...(o.args ?? []),
    ],
    o.env ?? {},
  );
  await proc.waitFor(/tca dev: ready/, 110_000);
  const url = readFileSync(join(dir, "coordinator.url"), "utf8").trim();
  const rootPath = join(dir, "root.pem");
  writeFileSync(rootPath, await (await fetch(`${url}/ca.pem`)).text());
  return {
    dir,
    url,
    token: readFileSync(join(dir, "requester.token"), "utf8").trim(),
    adminToken: readFileSync(join(dir, "admin.token"), "utf8").trim(),
    rootPath,
    proc,
    home: (name) => ({
      home: join(dir, "custodians", name),
      passphraseFile: join(dir, "custodians", name, "passphrase"),
    }),
  };
}

/** `tca custodian <verb> ...` for one custodian of a dev CA, as a separate process. */
export function custodianCli(
  sb: Sandbox,
  ca: DevCa,
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Proc {
  const h = ca.home(name);
  const [verb, ...rest] = args;
  return sb.tca(["custodian", verb!, ...rest, "--home", h.home, "--passphrase-file", h.passphraseFile], env);
}

export interface SubmitResult {
  status: number;
  body: Record<string, unknown>;
}

export async function submitCsr(
  ca: DevCa,
  csrPem: string,
  profile = "server",
  token = ca.token,
): Promise<SubmitResult> {
  const res = await fetch(`${ca.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ csr: csrPem, profile }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function requestView(
  ca: DevCa,
  id: string,
): Promise<Record<string, unknown> & { status: string }> {
  // Reads need credentials (docs/security-model.md); the admin reads every requester's requests.
  const res = await fetch(`${ca.url}/api/v1/requests/${id}`, {
    headers: { authorization: `Bearer ${ca.adminToken}` },
  });
  return (await res.json()) as Record<string, unknown> & { status: string };
}

/** Makes a key and CSR with openssl in `dir`; returns the paths. `keyArgs` as for `openssl req -newkey`. */
export function makeCsr(
  dir: string,
  name: string,
  o: { newkey: string[]; subject: string; sans?: string },
): { key: string; csr: string; csrPem: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      ...o.newkey,
      "-nodes",
      "-keyout",
      key,
      "-out",
      csr,
      "-subj",
      o.subject,
      ...(o.sans ? ["-addext", `subjectAltName=${o.sans}`] : []),
    ],
    { stdio: "pipe" },
  );
  return { key, csr, csrPem: readFileSync(csr, "utf8") };
}

export const KEY_ARGS: Record<string, string[]> = {
  "rsa-2048": ["-newkey", "rsa:2048"],
  "rsa-1024": ["-newkey", "rsa:1024"],
  "p-256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  "p-384": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
  ed25519: ["-newkey", "ed25519"],
  ed448: ["-newkey", "ed448"],
};
