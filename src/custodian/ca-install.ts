// A custodian adopts the CA certificate an external root issued for the CA key (intermediate mode,
// docs/intermediate.md) before it signs anything under it. The root pinned at the key ceremony stays
// in HOME/ca.pem, untouched: it is what the custodian trusts for the coordinator's TLS certificates
// issued before the install (connect.ts). The adopted CA certificate goes to HOME/ca-cert.pem (the
// leaf and CRL builders take issuer and AKI from it: session.ts caCertificateOf) and the chain above
// it to HOME/ca-chain.pem (whose name and path-length constraints its lint enforces, leaf-check.ts;
// its self-signed root is trusted for TLS too, as Node has no partial-chain trust).
//
// It never takes the coordinator's word: a certificate is adopted only if it passes the same checks
// the coordinator made (src/x509/ca-chain.ts) against this custodian's own ca-config and group key —
// its key is the group key, its subject is ca-config's CA subject, it is a CA, the chain verifies up
// to a self-signed root, all are valid now, and the root is the one ca-config pins, if it pins one.
// A self-signed certificate is never adopted from the coordinator: the root comes from the ceremony.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import { X509Certificate } from "node:crypto";
import { caCertFacts, checkCaInstall, pemCertificates } from "../x509/ca-chain.ts";
import { bytesEqual, fromPem, toPem } from "../x509/der.ts";
import { nameToDer } from "../x509/names.ts";
import type { CoordinatorClient } from "./client.ts";
import type { CustodianHome } from "./home.ts";

/** File names in a custodian's home (beside HOME/ca.pem, the ceremony's root). */
export const CA_CHAIN_FILE = "ca-chain.pem";
export const ADOPTED_CA_FILE = "ca-cert.pem";

export const caChainPath = (home: Pick<CustodianHome, "dir">): string => join(home.dir, CA_CHAIN_FILE);
export const adoptedCaPath = (home: Pick<CustodianHome, "dir">): string => join(home.dir, ADOPTED_CA_FILE);

/** The CA certificate this custodian adopted from an external root, if it adopted one. */
export function readAdoptedCa(home: Pick<CustodianHome, "dir">): Uint8Array | undefined {
  const path = adoptedCaPath(home);
  return existsSync(path)
    ? fromPem(readFileSync(path, "utf8"), ["CERTIFICATE"], "CERT_MALFORMED")
    : undefined;
}

/** The chain this custodian adopted (issuer first), empty while its CA certificate is the root. */
export function readCaChain(home: Pick<CustodianHome, "dir">): Uint8Array[] {
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
  // Unchanged — unless HOME/ca.pem itself holds a certificate under an external root (a home
  // restored from the coordinator's /ca.pem) that was never adopted with its chain: adopt it now, so
  // its chain is checked and kept (the lint and TLS need it).
  if (bytesEqual(served, o.current) && (readAdoptedCa(o.home) !== undefined || selfSigned(served)))
    return { kind: "unchanged" };
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
    // No going back (docs/intermediate.md): a certificate older than the adopted one — perhaps less
    // constrained, or issued before the root's operator revised it — is never adopted again.
    const adopted = readAdoptedCa(o.home);
    if (adopted && !bytesEqual(adopted, served)) {
      const was = caCertFacts(adopted, "the adopted CA certificate").tbs.notBefore.date;
      if (checked.facts.tbs.notBefore.date < was)
        return {
          kind: "refused",
          reason: `the coordinator's CA certificate (notBefore ${checked.facts.tbs.notBefore.date.toISOString()}) is older than the one this custodian adopted (notBefore ${was.toISOString()}): no going back to an earlier certificate`,
        };
    }
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

/** Self-issued and verified under its own key: a root, which only the key ceremony gives. */
function selfSigned(der: Uint8Array): boolean {
  const f = caCertFacts(der, "the CA certificate");
  if (!f.selfIssued) return false;
  const x = new X509Certificate(Buffer.from(der));
  return x.verify(x.publicKey);
}

/**
 * Writes HOME/ca-chain.pem, then HOME/ca-cert.pem, each replaced whole (write, then rename).
 * HOME/ca.pem, the ceremony's root, is never touched.
 */
function saveCa(home: CustodianHome, certificate: Uint8Array, chain: readonly Uint8Array[]): void {
  const put = (path: string, text: string) => {
    writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  };
  put(caChainPath(home), chain.map((d) => toPem(d, "CERTIFICATE")).join(""));
  put(adoptedCaPath(home), toPem(certificate, "CERTIFICATE"));
}
