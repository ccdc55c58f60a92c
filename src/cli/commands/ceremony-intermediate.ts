// `tca ceremony csr` and `tca ceremony install-ca-cert` (admin): intermediate mode, tca's threshold
// key as an issuing CA under an existing root (docs/intermediate.md).
//
//   tca ceremony csr --out tca-ca.csr --wait     the custodians approve and threshold-sign a CSR for
//                                                the CA key; the external root's operator signs it
//   tca ceremony install-ca-cert --cert tca-ca.pem --chain root.pem
//                                                the coordinator checks and installs the certificate
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { z } from "zod";
import { CoordinatorClient } from "../../custodian/client.ts";
import { CustodianError } from "../../custodian/errors.ts";
import { CaCsrViewSchema, CaInstalledSchema, type CaCsrView } from "../../protocol/ca-csr.ts";
import { HttpClient, plainHttpTokenProblem } from "../../protocol/http-client.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { collectUrls, COORDINATOR_FLAG, requiredCoordinatorUrls } from "../coordinators.ts";
import { interruptible, printResult, progress, runCommand, UsageError } from "../output.ts";
import { readToken } from "../token.ts";

interface AdminOpts {
  coordinator?: string[];
  caFile?: string;
  tokenFile?: string;
  json?: boolean;
}

const Changes = z.object({ seq: z.number().int().min(0) });

function admin(o: AdminOpts): { client: CoordinatorClient; token: string } {
  const urls = requiredCoordinatorUrls(o.coordinator);
  const plain = plainHttpTokenProblem(urls);
  if (plain) throw new UsageError(plain);
  const tls = caFileTls(o.caFile);
  return {
    client: new CoordinatorClient(new HttpClient(urls, tls ? { tls } : {})),
    token: readToken(o.tokenFile, "TCA_ADMIN_TOKEN", "an admin token"),
  };
}

function common(cmd: Command): Command {
  return cmd
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .option("--token-file <file>", "admin bearer token file (else TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--json", "print the outcome as JSON");
}

const line = (v: CaCsrView): string =>
  `CSR ${v.id}: ${v.status}, ${v.approvals.length} of ${v.threshold} approvals${v.approvals.length ? ` (${v.approvals.join(", ")})` : ""}${v.rejection ? `; rejected by ${v.rejection.by}: ${v.rejection.reason}` : ""}${v.failure ? `; ${v.failure}` : ""}`;

/** Follows a CSR proposal on the change feed until it is signed, rejected or failed. */
async function follow(client: CoordinatorClient, token: string, id: string): Promise<CaCsrView> {
  let last = "";
  let seq = (await client.get("/api/v1/changes?wait=0", Changes, { token })).seq;
  for (;;) {
    const v = await client.get(`/api/v1/ca/csr/${encodeURIComponent(id)}`, CaCsrViewSchema, { token });
    if (line(v) !== last) progress(line(v));
    last = line(v);
    if (v.status === "signed") return v;
    if (v.status === "rejected" || v.status === "failed")
      throw new CustodianError("REFUSED", `the CA's certification request was not signed: ${line(v)}`);
    seq = (await client.get(`/api/v1/changes?after=${seq}&wait=20`, Changes, { token })).seq;
  }
}

export function registerIntermediate(cer: Command): void {
  common(
    cer
      .command("csr")
      .description(
        "intermediate mode: have the custodians approve and threshold-sign a CSR for the CA key, for an external root to certify",
      ),
  )
    .option("--out <file>", "write the signed CSR (PEM) here once it is signed (implies --wait)")
    .option("--wait", "wait until t custodians have approved and signed it, showing progress")
    .action((o: AdminOpts & { out?: string; wait?: boolean }) =>
      runCommand(async () => {
        const { client, token } = admin(o);
        let v = await client.post("/api/v1/ca/csr", {}, CaCsrViewSchema, token);
        progress(`${line(v)}; subject "${v.subject}"`);
        if (v.status === "pending")
          progress(
            "each custodian approves it with `tca custodian ca-csr` (agents whose policy has signCaCsr: true approve it on their own)",
          );
        if (o.wait || o.out) {
          const id = v.id;
          v = await interruptible(
            () => `stopped following CSR ${id}; it goes on — see it with: tca ceremony csr --wait`,
            () => follow(client, token, id),
          );
          if (o.out) {
            writeFileSync(o.out, v.csr!);
            progress(`signed CSR written to ${o.out} (check it: openssl req -verify -noout -in ${o.out})`);
          }
        }
        printResult(!!o.json, v, o.out || !v.csr ? line(v) : v.csr.trimEnd());
      }),
    );

  common(
    cer
      .command("install-ca-cert")
      .description(
        "intermediate mode: install the certificate the external root issued for the CA key, with its chain",
      ),
  )
    .requiredOption("--cert <file>", "(required) the CA certificate for the tca key, PEM")
    .requiredOption(
      "--chain <file>",
      "(required) the certificates above it, PEM: its issuer first, up to and including the root",
    )
    .action((o: AdminOpts & { cert: string; chain: string }) =>
      runCommand(async () => {
        const read = (f: string, what: string) => {
          try {
            return readFileSync(f, "utf8");
          } catch (e) {
            throw new UsageError(`cannot read ${what} ${f}: ${(e as Error).message}`);
          }
        };
        const body = { certificate: read(o.cert, "--cert"), chain: read(o.chain, "--chain") };
        const { client, token } = admin(o);
        const out = await client.post("/api/v1/ca/certificate", body, CaInstalledSchema, token);
        printResult(
          !!o.json,
          out,
          [
            `installed: "${out.subject}", issued by "${out.issuer}", valid until ${out.notAfter}`,
            `root: "${out.root}" (SHA-256 ${out.rootSha256}; pin it as ca.externalRoot.sha256 in ca-config)`,
            "certificates issued from now on chain leaf → tca CA → root; custodians adopt the certificate after their own checks",
          ].join("\n"),
        );
      }),
    );
}
