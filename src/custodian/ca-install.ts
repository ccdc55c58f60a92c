// A custodian adopts the CA certificate an external root issued for the CA key (intermediate mode,
// docs/intermediate.md) before it signs anything under it. It keeps its CA certificate in
// HOME/ca.pem (the leaf and CRL builders take issuer and AKI from it) and the chain above it in
// HOME/ca-chain.pem (whose name and path-length constraints its lint enforces, leaf-check.ts).
//
// It never takes the coordinator's word: a certificate is adopted only if it passes the same checks
// the coordinator made (src/x509/ca-chain.ts) against this custodian's own ca-config and group key —
// its key is the group key, its subject is ca-config's CA subject, it is a CA, the chain verifies up
// to a self-signed root, all are valid now, and the root is the one ca-config pins, if it pins one.
// A self-signed certificate is never adopted from the coordinator: the root comes from the ceremony.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import { checkCaInstall, pemCertificates } from "../x509/ca-chain.ts";
import { bytesEqual, fromPem, toPem } from "../x509/der.ts";
import { nameToDer } from "../x509/names.ts";
import type { CoordinatorClient } from "./client.ts";
import type { CustodianHome } from "./home.ts";

export const caChainPath = (home: CustodianHome): string => join(home.dir, "ca-chain.pem");

/** The chain this custodian adopted (issuer first), empty while its CA certificate is the root. */
export function readCaChain(home: CustodianHome): Uint8Array[] {
  const path = caChainPath(home);
  return existsSync(path) ? pemCertificates(readFileSync(path, "utf8"), path) : [];
}

export type Adoption =
  | { kind: "unchanged" }
  | { kind: "adopted"; certificate: Uint8Array; chain: Uint8Array[]; subject: string; root: string }
  | { kind: "refused"; reason: string };

/**
 * Compares this custodian's CA certificate with the coordinator's (GET /ca.pem, /ca-chain.pem) and
 * adopts the coordinator's if it differs and passes every check. Never throws for what the
 * coordinator serves: a certificate it will not adopt is `refused`, with the reason.
 */
export async function adoptCoordinatorCa(o: {
  client: CoordinatorClient;
  home: CustodianHome;
  config: LoadedConfig;
  caPublicKey: Uint8Array;
  current: Uint8Array;
  now?: Date;
}): Promise<Adoption> {
  const served = fromPem(await o.client.text("/ca.pem"), ["CERTIFICATE"], "CERT_MALFORMED");
  if (bytesEqual(served, o.current)) return { kind: "unchanged" };
  let chain: Uint8Array[];
  try {
    chain = pemCertificates(await o.client.text("/ca-chain.pem"), "the coordinator's chain").slice(1);
  } catch (e) {
    return { kind: "refused", reason: `cannot read the coordinator's chain: ${(e as Error).message}` };
  }
  if (chain.length === 0)
    return {
      kind: "refused",
      reason:
        "the coordinator serves another self-signed CA certificate: a root comes only from the key ceremony",
    };
  const cfg = o.config.config.ca;
  try {
    const checked = checkCaInstall({
      certificate: served,
      chain,
      caPublicKey: o.caPublicKey,
      caSubjectDer: nameToDer(cfg.subject),
      ...(cfg.externalRoot ? { pinnedRootSha256: cfg.externalRoot.sha256 } : {}),
      now: o.now ?? new Date(),
    });
    saveCa(o.home, checked.certificate, checked.chain);
    return {
      kind: "adopted",
      certificate: checked.certificate,
      chain: checked.chain,
      subject: checked.facts.subject,
      root: checked.root.subject,
    };
  } catch (e) {
    return { kind: "refused", reason: (e as Error).message };
  }
}

/** Writes HOME/ca.pem and HOME/ca-chain.pem, each replaced whole (write, then rename). */
function saveCa(home: CustodianHome, certificate: Uint8Array, chain: readonly Uint8Array[]): void {
  const put = (path: string, text: string) => {
    writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  };
  put(caChainPath(home), chain.map((d) => toPem(d, "CERTIFICATE")).join(""));
  put(home.caCertPath, toPem(certificate, "CERTIFICATE"));
}
