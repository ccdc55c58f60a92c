// How a custodian reaches its coordinators: one place that builds the client every custodian
// command and agent uses, so TLS and read authentication are decided once.
// - TLS (docs/tls.md): https:// coordinators are verified against the CA root this custodian pinned
//   at the key ceremony (or a CA file it was given); http:// URLs move to https:// once the
//   coordinator serves a certificate from that root.
// - Reads are signed with the custodian's identity key (docs/security-model.md), so the coordinator
//   shows a custodian what it must review and nothing to strangers.
import { HttpClient } from "../protocol/http-client.ts";
import { CoordinatorClient } from "./client.ts";

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
  /** PEM CA certificates the coordinator's TLS certificate must chain to. */
  caPem?: string;
}

export function connectCustodian(o: CustodianLinkOptions): CoordinatorClient {
  const http = new HttpClient(o.urls, {
    spread: (o.role ?? "cli") === "agent",
    ...(o.caPem ? { tls: { ca: o.caPem, upgrade: true } } : {}),
  });
  return new CoordinatorClient(http);
}
