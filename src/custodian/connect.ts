// How a custodian reaches its coordinators: one place that builds the client every custodian
// command and agent uses, so TLS and read authentication are decided once.
// - TLS (docs/tls.md): the custodian trusts the CA root it pinned at the key ceremony
//   (HOME/ca.pem), in intermediate mode also the external root at the top of the chain it adopted
//   (HOME/ca-chain.pem, checked when adopted: docs/intermediate.md; Node has no partial-chain trust,
//   so the adopted CA certificate itself cannot be the anchor), plus the PEM certificates in
//   `$TCA_CA_FILE` when that is set, and then nothing else (not Node's built-in roots; those only
//   while it has neither). https:// coordinators must chain to one of them. With a pinned
//   root, http:// URLs (the ones the ceremony ran on, before any root existed) move to https:// as
//   soon as the coordinator serves a certificate from that trust, and never move back.
// - Reads are signed with the custodian's identity key (docs/security-model.md), so the coordinator
//   shows a custodian what it must review and nothing to strangers.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pemCertificates } from "../x509/ca-chain.ts";
import { toPem } from "../x509/der.ts";
import { CA_CHAIN_FILE } from "./ca-install.ts";
import { caFileFromEnv, parseCaBundle } from "../protocol/ca-bundle.ts";
import { HttpClient, type TlsOptions } from "../protocol/http-client.ts";
import { CoordinatorClient } from "./client.ts";
import { signReadHeader } from "../protocol/signed-read.ts";

export interface CustodianIdentity {
  name: string;
  signingSecret: Uint8Array;
}

export interface CustodianLinkOptions {
  /** One URL, a comma-separated list or an array. */
  urls: string | readonly string[];
  /** Agents start at a random replica, so the replicas share their load. */
  role?: "agent" | "cli";
  /** The custodian's identity (signs reads). Absent before a keystore is opened. */
  identity?: CustodianIdentity;
  /** The custodian's home: its pinned CA root (`caCertPath`, written at the key ceremony) is trusted. */
  home?: { caCertPath: string };
  /** More PEM CA certificates to pin, as the home's root is (upgrade on). */
  caPem?: string;
  /** Where `$TCA_CA_FILE` is read from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * What a custodian trusts for the coordinator's TLS certificate: the pinned root (home's ca.pem,
 * `caPem`) plus `$TCA_CA_FILE`. Upgrading http:// URLs is on when a root is pinned. Undefined when
 * there is nothing to trust yet (before the ceremony, no CA file): https:// URLs are then verified
 * against Node's built-in roots, http:// URLs stay plain.
 */
export function custodianTrust(
  o: Pick<CustodianLinkOptions, "home" | "caPem" | "env">,
): TlsOptions | undefined {
  const pinned: string[] = [];
  if (o.home && existsSync(o.home.caCertPath))
    pinned.push(parseCaBundle(readFileSync(o.home.caCertPath, "utf8"), o.home.caCertPath));
  // Both stay trusted after an install: the coordinator's TLS certificate is renewed under the
  // adopted CA certificate some time after it (src/coordinator/self-cert.ts).
  const adoptedRoot = o.home ? adoptedChainRoot(dirname(o.home.caCertPath)) : undefined;
  if (adoptedRoot) pinned.push(adoptedRoot);
  if (o.caPem) pinned.push(parseCaBundle(o.caPem, "the pinned CA certificate"));
  const extra = caFileFromEnv(o.env);
  const ca = [...pinned, ...(extra ? [extra] : [])].join("");
  if (!ca) return undefined;
  return {
    ca,
    upgrade: pinned.length > 0,
    hint: "it must chain to the CA root this custodian pinned at the key ceremony (HOME/ca.pem) or to $TCA_CA_FILE (in intermediate mode also to the root above the CA certificate it adopted, HOME/ca-chain.pem)",
  };
}

/** The last certificate of HOME/ca-chain.pem (the self-signed root adoption checked), as PEM. */
function adoptedChainRoot(dir: string): string | undefined {
  const path = join(dir, CA_CHAIN_FILE);
  if (!existsSync(path)) return undefined;
  const root = pemCertificates(readFileSync(path, "utf8"), path).at(-1);
  return root ? parseCaBundle(toPem(root, "CERTIFICATE"), path) : undefined;
}

/** POSTs whose answers are reads: the exchange (requests to review) and a decision (the request). */
const SIGNED_POSTS = /^\/api\/v1\/(custodians\/exchange|requests\/[^/]+\/approvals)$/;

export function connectCustodian(o: CustodianLinkOptions): CoordinatorClient {
  const tls = custodianTrust(o);
  const http = new HttpClient(o.urls, {
    spread: (o.role ?? "cli") === "agent",
    ...(tls ? { tls } : {}),
  });
  // Reads carry a fresh signed read (src/protocol/signed-read.ts), made anew for each attempt: GETs,
  // the exchange, whose answer holds the requests this custodian is to review, and a decision, whose
  // answer is the request. Other POSTs are signed envelopes whose answers reveal nothing.
  const identity = o.identity;
  return new CoordinatorClient(
    http,
    identity
      ? {
          headers: (method, url): Record<string, string> =>
            method === "GET" || method === "HEAD" || SIGNED_POSTS.test(url.pathname)
              ? { authorization: signReadHeader(identity, method, url) }
              : {},
        }
      : {},
  );
}
