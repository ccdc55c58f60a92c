// The coordinator's own TLS certificate in auto mode (`tca serve --tls auto`, docs/tls.md).
// Once the CA root exists, the coordinator makes a P-256 key and a CSR for its names and submits it
// through the normal intake as the requester named `coordinator` in ca-config: the custodians then
// review, approve and threshold-sign it exactly like any request (they re-derive the TBS and check
// it against that requester's grant in their own copy of ca-config), and anyone can see
// the request in the list as coming from `coordinator`. No token is involved: the coordinator calls
// its own intake. When the certificate is issued it is checked (it chains to the CA root, its key is
// ours, it is valid now), saved in the TLS directory (key mode 0600), and installed without a
// restart. It is renewed with a new key once two thirds of its lifetime have passed; a saved
// certificate is reused across restarts until then. The loop itself is self-cert.ts, shared with
// the OCSP responder's certificate (docs/ocsp.md). Nothing here logs a key.
import { isIP } from "node:net";
import type { Logger } from "pino";
import type { CaConfig, Requester } from "../config/schema.ts";
import { grantCovers } from "../x509/policy.ts";
import type { KeyAndChain } from "./http/tls.ts";
import {
  defaultDirBeside,
  SelfCertificate,
  SELF_CERT_RETRY_MS,
  SELF_CERT_TICK_MS,
  type SelfCertRequests,
} from "./self-cert.ts";

export { renewAt } from "./self-cert.ts";

/** The ca-config requester the coordinator's own certificate requests come from. */
export const SELF_REQUESTER = "coordinator";
/** How often the loop looks: for the root, for its pending request, for renewal. */
export const SELF_TLS_TICK_MS = SELF_CERT_TICK_MS;
/** After a refused, rejected or failed request, wait this long before asking again. */
export const SELF_TLS_RETRY_MS = SELF_CERT_RETRY_MS;

/** `localhost`, `127.0.0.1`, `::1`, and the listen host when it names one address (not a wildcard). */
export function defaultTlsNames(host: string): string[] {
  const names = ["localhost", "127.0.0.1", "::1"];
  const h = host.replace(/^\[|\]$/g, "");
  if (h !== "" && h !== "0.0.0.0" && h !== "::" && !names.includes(h)) names.push(h);
  return names;
}

/**
 * The TLS directory beside a SQLite file (`tca.db` → `tca-tls`); with PostgreSQL (or an in-memory
 * database) `tca-tls` in the working directory — each replica needs its own.
 */
export function defaultTlsDir(database: string): string {
  return defaultDirBeside(database, "tls");
}

/**
 * Checks that ca-config has the `coordinator` requester, granted `profile`, whose allowed names
 * cover `names`; returns it, or throws an Error saying what to add.
 */
export function selfRequester(config: CaConfig, profile: string, names: readonly string[]): Requester {
  const r = config.requesters.find((x) => x.name === SELF_REQUESTER);
  const hint =
    `--tls auto needs a requester named "${SELF_REQUESTER}" in ca-config granted the "${profile}" profile, ` +
    `with allowedNames covering ${names.join(", ")} (its tokenSha256 may be the hash of a token nobody keeps: ` +
    `the coordinator submits its own request without one; see docs/tls.md)`;
  if (!r) throw new Error(`${hint}; there is none`);
  if (!(profile in config.profiles)) throw new Error(`--tls-profile: ca-config has no profile "${profile}"`);
  if (!r.profiles.includes(profile)) throw new Error(`${hint}; it is not granted "${profile}"`);
  for (const n of names) {
    const type = isIP(n) ? "ip" : "dns";
    if (!r.allowedNames.some((p) => grantCovers(type, n, p)))
      throw new Error(`${hint}; its allowedNames do not cover ${n}`);
  }
  // Clients accept any certificate from this CA for the coordinator's names as the coordinator's:
  // unless the grant is exclusive, a requester whose grant also covers them could get one and
  // impersonate the coordinator. Loopback names (tca dev) are exempt: only this host reaches them.
  if (!r.exclusive) {
    const shared = names.filter(
      (n) =>
        !LOOPBACK.has(n) &&
        config.requesters.some(
          (o) => o.name !== r.name && o.allowedNames.some((p) => grantCovers(isIP(n) ? "ip" : "dns", n, p)),
        ),
    );
    if (shared.length > 0)
      throw new Error(
        `other requesters may ask for ${shared.join(", ")}, and could then pose as this coordinator: ` +
          `set "exclusive: true" on requester "${SELF_REQUESTER}" in ca-config (docs/tls.md)`,
      );
  }
  return r;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);

export type SelfTlsRequests = SelfCertRequests;

export interface SelfTlsOptions {
  requests: SelfTlsRequests;
  caCertificate(): Promise<Uint8Array | null>;
  requester: Requester;
  profile: string;
  names: readonly string[];
  dir: string;
  log: Logger;
  /** Called with each certificate to serve (the saved one at start, each new one). */
  install(m: KeyAndChain): void;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

/** The coordinator's TLS certificate: CN and SANs are its names (self-cert.ts does the rest). */
export class SelfTls extends SelfCertificate {
  constructor(o: SelfTlsOptions) {
    const cn = o.names.find((n) => !isIP(n)) ?? o.names[0]!;
    super({
      label: "TLS",
      what: "the coordinator's certificate",
      requests: o.requests,
      caCertificate: o.caCertificate,
      requester: o.requester,
      profile: o.profile,
      subject: `CN=${cn}`,
      sans: o.names.map((value) => ({ type: isIP(value) ? ("ip" as const) : ("dns" as const), value })),
      dir: o.dir,
      log: o.log,
      install: (m) => o.install({ keyPem: m.keyPem, chainPem: m.chainPem }),
      installed: (renewed) =>
        renewed ? "TLS: renewed certificate installed" : "TLS: certificate installed; serving HTTPS",
      ...(o.now ? { now: o.now } : {}),
    });
  }
}
