// `tca request` without the command line: make a key and CSR (or take one), submit it, wait for
// the custodians, fetch the chain and write the files.
import { readFileSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import type { RequestView } from "../protocol/approval.ts";
import { RequesterClient } from "./client.ts";
import { RequesterError } from "./errors.ts";
import { checkOutputs, writeOutput } from "./files.ts";
import { certificateSpki, generateKeyAndCsr, readCsr, splitPemChain, type KeyType } from "./keys.ts";
import { waitForRequest } from "./wait.ts";

export interface RequestOptions {
  name: string;
  sans: readonly string[];
  profile: string;
  keyType: KeyType;
  /** Submit this CSR (PEM or DER) as is; no key is generated or written. */
  csrFile?: string;
  keyOut: string;
  certOut: string;
  chainOut: string;
  force: boolean;
  coordinator: string;
  token: string;
  /** PEM CA certificates the coordinator's TLS certificate must chain to (default: Node's roots). */
  ca?: string;
  validityHours?: number;
  wait: boolean;
  /** 0 = no limit. */
  timeoutMs: number;
  pollIntervalMs?: number;
}

export interface RequestHooks {
  onSubmitted?(id: string, keyPath: string | null): void;
  onProgress?(line: string): void;
}

export interface RequestOutcome {
  id: string;
  status: RequestView["status"];
  serial: string | null;
  /** Paths written; null when not (yet) written. */
  certificate: string | null;
  chain: string | null;
  key: string | null;
  notAfter: string | null;
  rejection: { by: string; reason: string } | null;
  failure: string | null;
}

/** Runs the whole request. Rejected and failed requests are returned, not thrown. */
export async function requestCertificate(
  o: RequestOptions,
  hooks: RequestHooks = {},
): Promise<RequestOutcome> {
  const writeKey = o.csrFile === undefined;
  checkOutputs([...(writeKey ? [o.keyOut] : []), ...(o.wait ? [o.certOut, o.chainOut] : [])], o.force);

  let csrPem: string;
  let spki: Uint8Array;
  let privateKeyPem: string | undefined;
  if (o.csrFile !== undefined) {
    ({ csrPem, spki } = readCsr(readFileSync(o.csrFile)));
  } else {
    // Large RSA keys take seconds to generate: say so rather than sit silent.
    if (o.keyType === "rsa-3072" || o.keyType === "rsa-4096")
      hooks.onProgress?.(`generating an ${o.keyType} key…`);
    ({ csrPem, spki, privateKeyPem } = await generateKeyAndCsr(o.name, o.sans, o.keyType));
  }

  const client = new RequesterClient(o.coordinator, o.token, undefined, o.ca ? { tls: { ca: o.ca } } : {});
  const submitted = await client.submit({
    csr: csrPem,
    profile: o.profile,
    ...(o.validityHours !== undefined ? { validityHours: o.validityHours } : {}),
  });
  // The request exists now: keep the key whatever happens while waiting.
  if (privateKeyPem !== undefined) writeOutput(o.keyOut, privateKeyPem, 0o600, o.force);
  const key = writeKey ? o.keyOut : null;
  hooks.onSubmitted?.(submitted.id, key);

  const outcome: RequestOutcome = {
    id: submitted.id,
    status: submitted.status,
    serial: submitted.serial ?? null,
    certificate: null,
    chain: null,
    key,
    notAfter: null,
    rejection: null,
    failure: null,
  };
  if (!o.wait) return outcome;

  const view = await waitForRequest(client, submitted.id, {
    timeoutMs: o.timeoutMs,
    ...(o.pollIntervalMs !== undefined ? { intervalMs: o.pollIntervalMs } : {}),
    ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
  });
  Object.assign(outcome, {
    status: view.status,
    serial: view.serial,
    notAfter: view.notAfter,
    rejection: view.rejection,
    failure: view.failure,
  });
  if (view.status !== "issued") return outcome;

  const chainPem = await client.chain(view.id);
  const certs = splitPemChain(chainPem);
  const leaf = certs[0];
  if (!leaf) throw new RequesterError("SERVER", `the coordinator sent no certificate for request ${view.id}`);
  const leafSpki = certificateSpki(leaf);
  if (leafSpki.length !== spki.length || !timingSafeEqual(leafSpki, spki))
    throw new RequesterError(
      "MISMATCH",
      `the certificate issued for request ${view.id} is not for the key in the CSR; not writing it`,
    );
  writeOutput(o.certOut, leaf, 0o644, o.force);
  writeOutput(o.chainOut, certs.join(""), 0o644, o.force);
  outcome.certificate = o.certOut;
  outcome.chain = o.chainOut;
  return outcome;
}
