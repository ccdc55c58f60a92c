// `tca revoke SERIAL|--cert FILE [--reason R]`: revoke a certificate with the owning requester's
// token or an admin token. The custodians then threshold-sign a new CRL that lists it
// (docs/revocation.md). A revocation is final: certificateHold is not offered.
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { printResult, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { OFFERED_REVOCATION_REASONS } from "../../protocol/crl-params.ts";
import { RequesterClient, toRequesterError } from "../../requester/client.ts";
import { RequesterError } from "../../requester/errors.ts";
import { splitPemChain } from "../../requester/keys.ts";
import { displaySerial, storedSerial } from "../../x509/serial.ts";

interface RevokeOpts {
  cert?: string;
  reason: string;
  coordinator?: string[];
  tokenFile?: string;
  adminTokenFile?: string;
  caFile?: string;
  json?: boolean;
}

const RevokedSchema = z.object({
  serial: z.string(),
  reason: z.string(),
  revokedAt: z.string(),
  renewals: z.array(z.string()).default([]),
});

export function registerRevoke(program: Command): void {
  program
    .command("revoke")
    .description("revoke a certificate (final); the custodians then sign a new CRL that lists it")
    .argument("[serial]", "the serial, in any form (tca's hex, openssl's, 0x…, with colons)")
    .option("--cert <file>", "revoke the certificate in this PEM file instead of naming its serial")
    .option("--reason <reason>", `why: ${OFFERED_REVOCATION_REASONS.join(", ")}`, "unspecified")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option(
      "--token-file <file>",
      "file holding the requester token that owns the certificate (default: $TCA_TOKEN)",
    )
    .option("--admin-token-file <file>", "file holding an admin token (default: $TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
A revocation is final: certificateHold is not offered, because custodians sign a CRL only if it
keeps every serial of the previous one, so a hold could never be released (docs/revocation.md).

Exit codes: 0 revoked; 1 refused by the coordinator (unknown serial, not yours, already revoked) or
failed; 2 usage (bad serial, bad reason, no token); 4 coordinator unreachable.

Examples:
  tca revoke 5f3a…e1 --reason keyCompromise --token-file .tca-dev/requester.token
  tca revoke --cert svc.example.internal.crt --admin-token-file .tca-dev/admin.token`,
    )
    .action((serial: string | undefined, o: RevokeOpts) => runCommand(() => runRevoke(serial, o)));
}

function serialOf(arg: string | undefined, certFile: string | undefined): string {
  if (arg !== undefined && certFile !== undefined)
    throw new UsageError("give the serial or --cert FILE, not both");
  if (certFile !== undefined) {
    let pem: string | undefined;
    try {
      pem = splitPemChain(readFileSync(certFile, "utf8"))[0];
    } catch (e) {
      throw new UsageError(`--cert: cannot read ${certFile} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (!pem) throw new UsageError(`--cert: ${certFile} holds no PEM certificate`);
    try {
      return storedSerial(new X509Certificate(pem).serialNumber)!;
    } catch {
      throw new UsageError(`--cert: ${certFile} holds a certificate that cannot be read`);
    }
  }
  if (arg === undefined) throw new UsageError("name the certificate: tca revoke SERIAL, or --cert FILE");
  const stored = storedSerial(arg);
  if (stored === undefined || /^0*$/.test(stored))
    throw new UsageError(
      `"${arg}" is not a serial number: hexadecimal digits, optionally 0x-prefixed or colon-separated`,
    );
  return stored;
}

/** The admin token if one is given (file, else $TCA_ADMIN_TOKEN when no requester token is), else the requester's. */
function tokenFor(o: RevokeOpts): string {
  const read = (file: string, flag: string) => {
    let t: string;
    try {
      t = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new UsageError(`${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (!t) throw new UsageError(`${flag}: ${file} is empty`);
    return t;
  };
  if (o.adminTokenFile !== undefined && o.tokenFile !== undefined)
    throw new UsageError("give --token-file or --admin-token-file, not both");
  if (o.adminTokenFile !== undefined) return read(o.adminTokenFile, "--admin-token-file");
  if (o.tokenFile !== undefined) return read(o.tokenFile, "--token-file");
  const t = process.env.TCA_TOKEN?.trim() || process.env.TCA_ADMIN_TOKEN?.trim();
  if (!t)
    throw new UsageError(
      "a token is needed: --token-file FILE or $TCA_TOKEN (the owning requester), or --admin-token-file FILE or $TCA_ADMIN_TOKEN",
    );
  return t;
}

async function runRevoke(arg: string | undefined, o: RevokeOpts): Promise<void> {
  const serial = serialOf(arg, o.cert);
  if (!(OFFERED_REVOCATION_REASONS as readonly string[]).includes(o.reason))
    throw new UsageError(
      o.reason === "certificateHold"
        ? "certificateHold is not offered: a hold could never be released, a revocation is final (docs/revocation.md); pick another reason"
        : `--reason must be one of: ${OFFERED_REVOCATION_REASONS.join(", ")}`,
    );
  const token = tokenFor(o);
  const urls = coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!;
  const ca = caFileTls(o.caFile)?.ca;
  const client = new RequesterClient(urls, token, undefined, ca ? { tls: { ca } } : {});
  const shown = displaySerial(serial);
  let r: z.infer<typeof RevokedSchema>;
  try {
    r = await client.http.json("POST", `/api/v1/certificates/${shown}/revoke`, RevokedSchema, {
      body: { reason: o.reason },
      token,
      // A second revocation would only be refused as "already revoked": never sent twice.
      idempotent: false,
      timeoutMs: 30_000,
    });
  } catch (e) {
    const mapped = toRequesterError(e);
    if (mapped instanceof RequesterError) {
      process.stderr.write(`tca: error: revoking ${shown}: ${mapped.message}\n`);
      process.exitCode = mapped.exitCode;
      return;
    }
    throw mapped;
  }
  const crl = `${client.baseUrl.replace(/\/$/, "")}/crl.pem`;
  const renewals = r.renewals.map(displaySerial);
  const data = { serial: displaySerial(r.serial), reason: r.reason, revokedAt: r.revokedAt, crl, renewals };
  printResult(
    !!o.json,
    data,
    [
      `revoked  ${data.serial}`,
      `reason   ${data.reason}`,
      `at       ${data.revokedAt}`,
      `next     the custodians sign a new CRL that lists it (usually within seconds); relying parties see it when they fetch ${crl}`,
      // Renewals are not revoked with it (docs/revocation.md): say so where it matters.
      ...(renewals.length
        ? [
            `renewals ${renewals.join(", ")} (issued renewals of it, NOT revoked${data.reason === "keyCompromise" ? "; revoke them too: the key is compromised" : ""})`,
          ]
        : []),
    ].join("\n"),
  );
}
