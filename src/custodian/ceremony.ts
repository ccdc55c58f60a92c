// `tca custodian dkg`: take part in the key ceremony, store the share once all n confirmed the same
// group key, then help sign the root and keep a copy of it.
import { createHash, X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { DkgRunner, type DkgOptions } from "./dkg-runner.ts";
import { connectCustodian } from "./connect.ts";
import { ExchangeLink } from "./exchange.ts";
import { CustodianHome, type CustodianSecrets } from "./home.ts";
import { SigningParticipant } from "./signer.ts";
import { rootTbsDeriver } from "./root-check.ts";
import { CustodianError } from "./errors.ts";
import { bytesToHex, publicToWire } from "../threshold/encoding.ts";
import { groupPublicKey } from "../threshold/dkg.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { verifyCertificateSignature } from "../x509/assemble.ts";
import { fromPem, toPem } from "../x509/der.ts";
import type { LoadedConfig } from "../config/load.ts";
import { rosterOf } from "../protocol/roster.ts";

export interface CeremonyRunOptions {
  home: CustodianHome;
  passphrase: string;
  coordinatorUrl: string;
  config: LoadedConfig;
  ceremony?: string;
  progress?: (line: string) => void;
  timeoutMs?: number;
  tamperRound2?: DkgOptions["tamperRound2"];
  tamperConfirm?: DkgOptions["tamperConfirm"];
}

export interface CeremonyOutcome {
  ceremonyId: string;
  caPublicKey: string;
  caKeyId: string;
  rootPem: string;
}

export function caKeyIdFor(caPublicKey: Uint8Array): string {
  return createHash("sha256").update(ed25519Spki(caPublicKey)).digest("hex");
}

export async function runCeremony(o: CeremonyRunOptions): Promise<CeremonyOutcome> {
  const say = o.progress ?? (() => undefined);
  const secrets = await o.home.open(o.passphrase);
  if (secrets.share)
    throw new CustodianError(
      "HOME_EXISTS",
      `this custodian already holds a key share from ceremony ${secrets.share.ceremonyId}`,
    );
  const signer = {
    name: secrets.identity.name,
    signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
  };
  // Before the ceremony no root exists to verify TLS against: the ceremony's envelopes are signed and
  // its shares HPKE-encrypted end to end (docs/tls.md).
  const client = connectCustodian({ urls: o.coordinatorUrl, identity: signer });
  const result = await new DkgRunner({
    client,
    signer,
    config: o.config,
    ceremony: o.ceremony ?? "current",
    progress: say,
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.tamperRound2 ? { tamperRound2: o.tamperRound2 } : {}),
    ...(o.tamperConfirm ? { tamperConfirm: o.tamperConfirm } : {}),
  }).run();

  const caPublicKey = groupPublicKey(result.public);
  const caKeyId = caKeyIdFor(caPublicKey);
  const updated: CustodianSecrets = {
    ...secrets,
    share: {
      ceremonyId: result.ceremonyId,
      identifier: result.secret.identifier,
      signingShare: bytesToHex(result.secret.signingShare),
      publicPackage: publicToWire(result.public),
      caKeyId,
      activatedAt: new Date().toISOString(),
      epoch: 0,
      roster: rosterOf(o.config.config),
    },
  };
  await o.home.save(o.passphrase, updated);
  say(`key share stored in ${o.home.keystorePath}`);

  // Root: any t of the n sign; each re-derives the TBS from its own ca-config.
  const participant = new SigningParticipant(
    signer,
    {
      secret: result.secret,
      public: result.public,
      caKeyId,
      threshold: o.config.config.threshold,
      roster: o.config.config.custodians.map((c) => c.name),
    },
    { root: rootTbsDeriver(o.config, result.ceremonyId, caPublicKey) },
  );
  const link = new ExchangeLink(client, signer.name, participant);
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  const Status = z
    .object({
      status: z.string(),
      failure: z.object({ reason: z.string(), culprits: z.array(z.string()) }).nullable(),
    })
    .passthrough();
  try {
    for (;;) {
      const c = await client.get(`/api/v1/ceremonies/${result.ceremonyId}`, Status);
      if (c.status === "complete") break;
      if (c.status === "failed")
        throw new CustodianError(
          "CEREMONY_FAILED",
          `ceremony failed: ${c.failure?.reason}`,
          c.failure?.culprits ?? [],
        );
      if (Date.now() > deadline)
        throw new CustodianError("TIMEOUT", "timed out waiting for the root certificate");
      const res = await link.round({ wait: 1, review: false });
      const batch = await participant.signTasks(res.tasks.filter((t) => t.kind === "root"));
      link.send(...batch.envelopes);
      for (const out of batch.outcomes) {
        if (out.kind === "signed") say("root signature share sent");
        if (out.kind === "refused") say(`refused to sign the root: ${out.reason}`);
      }
    }
  } finally {
    await link.close();
    participant.close();
  }
  const pem = await client.text("/ca.pem");
  const der = fromPem(pem, ["CERTIFICATE"]);
  if (!verifyCertificateSignature(der, caPublicKey))
    throw new CustodianError("CEREMONY_FAILED", "the published root is not signed by the group key");
  const x = new X509Certificate(Buffer.from(der));
  if (
    !Buffer.from(x.publicKey.export({ format: "der", type: "spki" })).equals(
      Buffer.from(ed25519Spki(caPublicKey)),
    )
  ) {
    throw new CustodianError("CEREMONY_FAILED", "the published root carries another public key");
  }
  writeFileSync(o.home.caCertPath, toPem(der, "CERTIFICATE"));
  writeFileSync(o.home.coordinatorUrlPath, o.coordinatorUrl + "\n");
  say(`root certificate saved to ${o.home.caCertPath}`);
  return {
    ceremonyId: result.ceremonyId,
    caPublicKey: bytesToHex(caPublicKey),
    caKeyId,
    rootPem: toPem(der, "CERTIFICATE"),
  };
}
