// A whole CA in one process, for domain tests without processes or HTTP: the coordinator's services
// (createServices) on an in-memory SQLite store, and custodians that run the real DKG (DkgRunner)
// and the real signing code (SigningParticipant over an ExchangeLink) straight into those services.
// The custodians here sign the TBS the coordinator proposes (their derivation and policy checks are
// tested in test/custodian/); what is under test is the coordinator's domain.
import "reflect-metadata";
import { createHash, randomBytes, webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as x509 from "@peculiar/x509";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import type { z } from "zod";
import { parseCaConfig, type LoadedConfig } from "../../src/config/load.ts";
import pino from "pino";
import { caKeyIdOf } from "../../src/coordinator/ceremony.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import { createServices, type CoordinatorServices } from "../../src/coordinator/services.ts";
import { openStore } from "../../src/coordinator/store/open.ts";
import type { SigningJobRecord } from "../../src/coordinator/store/types.ts";
import type { CoordinatorClient } from "../../src/custodian/client.ts";
import { DkgRunner, type DkgResult } from "../../src/custodian/dkg-runner.ts";
import { ExchangeLink } from "../../src/custodian/exchange.ts";
import { SigningParticipant, type TbsDeriver } from "../../src/custodian/signer.ts";
import { DkgMessageTypeSchema } from "../../src/protocol/enums.ts";
import { APPROVAL_DOMAIN, type ApprovalStatement } from "../../src/protocol/approval.ts";
import { sealEnvelope, type SignedEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import { hexToBytes } from "../../src/threshold/encoding.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { BUILDER_VERSION } from "../../src/x509/leaf.ts";
import { createAcme } from "../../src/acme/router.ts";
import { createConsole, type ConsoleOptions } from "../../src/console/router.ts";
import type { HttpLimits } from "../../src/coordinator/http/limits.ts";
import { DEFAULT_VALIDATION, type AcmeValidationOptions } from "../../src/acme/context.ts";

export interface InProcessCustodian {
  name: string;
  signer: Signer;
  participant: SigningParticipant;
  link: ExchangeLink;
}

export interface InProcessCa {
  names: string[];
  threshold: number;
  config: LoadedConfig;
  services: CoordinatorServices;
  signers: Map<string, Signer>;
  /** Set once the ceremony ran (runCeremony or `ready`). */
  custodians: Map<string, InProcessCustodian>;
  caPublicKey: Uint8Array | null;
  caKeyId: string | null;
  close(): Promise<void>;
}

/** ca-config/ca.yaml with a roster of fresh identities (names, threshold as given). */
export function testConfig(
  names: readonly string[],
  threshold: number,
  /** More requesters, each like the example's first one, with this bearer token. */
  extraRequesters: readonly { name: string; token: string }[] = [],
  /** Last changes to the document before it is parsed (e.g. an `acme` section). */
  edit?: (doc: Record<string, unknown>) => void,
): { config: LoadedConfig; signers: Map<string, Signer> } {
  const doc = parseYaml(readFileSync(new URL("../../ca-config/ca.yaml", import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;
  const signers = new Map(
    names.map((name): [string, Signer] => [name, { name, signingSecret: new Uint8Array(randomBytes(32)) }]),
  );
  doc.threshold = threshold;
  doc.custodians = names.map((name) => ({
    name,
    signingKey: Buffer.from(ed25519.getPublicKey(signers.get(name)!.signingSecret)).toString("base64url"),
    hpkeKey: Buffer.from(randomBytes(32)).toString("base64url"),
  }));
  const requesters = doc.requesters as Record<string, unknown>[];
  for (const r of extraRequesters)
    requesters.push({
      ...requesters[0],
      name: r.name,
      tokenSha256: createHash("sha256").update(r.token).digest("hex"),
    });
  edit?.(doc);
  return { config: parseCaConfig(toYaml(doc)), signers };
}

/** An in-process CA behind a real HTTP server (loopback, port 0), before its key ceremony. */
export interface HttpCa {
  ca: InProcessCa;
  coordinator: RunningCoordinator;
  url: string;
}

/**
 * Starts a coordinator on loopback over HTTP, with in-process custodians to drive (runDkg,
 * exchangeUntil). With `ceremony`, the key ceremony has run and the CA is ready.
 */
export async function startHttpCa(
  o: {
    names?: readonly string[];
    threshold?: number;
    extraRequesters?: readonly { name: string; token: string }[];
    ceremony?: boolean;
    /**
     * Serves ACME (src/acme/): ca-config gets an `acme` section (default: profile `server`, open
     * registration for requester `acme`, which may ask for any name), merged with `config`.
     */
    acme?: { config?: Record<string, unknown>; validation?: Partial<AcmeValidationOptions> };
    limits?: Partial<HttpLimits>;
    /** Serves the web console at /ui/ (src/console/), with these options if an object. */
    console?: boolean | Omit<ConsoleOptions, "logger">;
  } = {},
): Promise<HttpCa & { ceremonyId?: string }> {
  const names = [...(o.names ?? ["alice", "bob", "carol"])];
  const threshold = o.threshold ?? 2;
  const acme = o.acme;
  const { config, signers } = testConfig(
    names,
    threshold,
    o.extraRequesters,
    acme
      ? (doc) => {
          (doc.requesters as Record<string, unknown>[]).push({
            name: "acme",
            tokenSha256: createHash("sha256").update(randomBytes(32)).digest("hex"),
            profiles: ["server"],
            allowedNames: ["*"],
          });
          doc.acme = { profiles: ["server"], openRegistration: { requester: "acme" }, ...acme.config };
        }
      : undefined,
  );
  const coordinator = await startCoordinator({
    config,
    database: ":memory:",
    port: 0,
    logger: pino({ level: "silent" }),
    ...(o.limits ? { limits: o.limits } : {}),
    extensions: [
      ...(o.console
        ? [
            (s: CoordinatorServices) =>
              createConsole(s, {
                ...(typeof o.console === "object" ? o.console : {}),
                logger: pino({ level: "silent" }),
              }),
          ]
        : []),
      ...(acme
        ? [
            (s: CoordinatorServices) =>
              createAcme(s, {
                validation: { ...DEFAULT_VALIDATION, timeoutMs: 3_000, ...acme.validation },
                logger: pino({ level: "silent" }),
              }),
          ]
        : []),
    ],
  });
  const ca: InProcessCa = {
    names,
    threshold,
    config,
    services: coordinator.services,
    signers,
    custodians: new Map(),
    caPublicKey: null,
    caKeyId: null,
    close: () => coordinator.close(),
  };
  const out: HttpCa = { ca, coordinator, url: coordinator.url };
  if (!o.ceremony) return out;
  return { ...out, ceremonyId: await completeCeremony(ca) };
}

/** Runs the key ceremony (started here unless `id` names one already started); returns its id. */
export async function completeCeremony(ca: InProcessCa, id?: string): Promise<string> {
  const ceremonyId = id ?? (await ca.services.ceremonies.start()).id;
  equipCustodians(ca, await runDkg(ca));
  await exchangeUntil(ca, async () => (await ca.services.ceremonies.view(ceremonyId)).status === "complete");
  return ceremonyId;
}

/** A coordinator with no CA key yet: the ceremony has not run. */
export async function newCoordinator(names = ["alice", "bob", "carol"], threshold = 2): Promise<InProcessCa> {
  const { config, signers } = testConfig(names, threshold);
  const store = await openStore(":memory:");
  const services = createServices(store, config, { shareTimeoutMs: 60_000 });
  return {
    names,
    threshold,
    config,
    services,
    signers,
    custodians: new Map(),
    caPublicKey: null,
    caKeyId: null,
    close: async () => {
      services.hooks.close();
      await store.close();
    },
  };
}

/**
 * The coordinator's HTTP routes the DKG runner uses, answered by the services directly. Errors keep
 * their `status` (CoordinatorError has one), which is what the runner looks at.
 */
function ceremonyClient(s: CoordinatorServices): CoordinatorClient {
  const answer = async (path: string, body?: unknown): Promise<unknown> => {
    const url = new URL(path, "http://in-process");
    const q = url.searchParams;
    const wait = Number(q.get("wait") ?? "0") * 1000;
    if (url.pathname === "/api/v1/changes")
      return { seq: await s.hooks.feed.wait(Number(q.get("after") ?? "0"), wait) };
    const m = /^\/api\/v1\/ceremonies\/([^/]+)(\/messages)?$/.exec(url.pathname);
    if (!m) throw new Error(`the in-process client does not serve ${path}`);
    const id = decodeURIComponent(m[1]!);
    if (!m[2]) return s.ceremonies.view(id);
    if (body !== undefined) return s.ceremonies.receive(id, body);
    return s.ceremonies.messages(id, DkgMessageTypeSchema.parse(q.get("type")), { waitMs: wait });
  };
  // JSON round trip: what the runner gets is what it would get over HTTP.
  const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
  const client = {
    get: async <T>(path: string, schema: z.ZodType<T>) => schema.parse(json(await answer(path))),
    post: async <T>(path: string, body: unknown, schema: z.ZodType<T>) =>
      schema.parse(json(await answer(path, json(body)))),
  };
  return client as unknown as CoordinatorClient;
}

/** Derivers that sign the bytes the coordinator proposes (see the file comment). */
const SIGN_AS_PROPOSED: Record<"root" | "leaf" | "crl", TbsDeriver> = {
  root: (task) => hexToBytes(task.tbs),
  leaf: (task) => hexToBytes(task.tbs),
  crl: (task) => hexToBytes(task.tbs),
};

/** Runs the DKG among every custodian in process; returns each one's key share. */
export async function runDkg(ca: InProcessCa): Promise<DkgResult[]> {
  const client = ceremonyClient(ca.services);
  return Promise.all(
    ca.names.map((name) =>
      new DkgRunner({
        client,
        signer: ca.signers.get(name)!,
        config: ca.config,
        ceremony: "current",
        timeoutMs: 30_000,
      }).run(),
    ),
  );
}

/** Gives each custodian its signing participant and exchange link, from its DKG result. */
export function equipCustodians(ca: InProcessCa, results: DkgResult[]): void {
  const groupKey = groupPublicKey(results[0]!.public);
  ca.caPublicKey = groupKey;
  ca.caKeyId = caKeyIdOf(groupKey);
  for (const [i, name] of ca.names.entries()) {
    const r = results[i]!;
    const signer = ca.signers.get(name)!;
    const participant = new SigningParticipant(
      signer,
      { secret: r.secret, public: r.public, caKeyId: ca.caKeyId, threshold: ca.threshold, roster: ca.names },
      SIGN_AS_PROPOSED,
      {},
      true,
    );
    const link = new ExchangeLink(
      (body) => ca.services.exchange.exchange(body, undefined, body.custodian),
      name,
      participant,
    );
    ca.custodians.set(name, { name, signer, participant, link });
  }
}

/**
 * Exchange rounds among `who` (every custodian by default) until `done()` holds: each sends what it
 * queued, signs the tasks it got, and queues the shares for its next round.
 */
export async function exchangeUntil(
  ca: InProcessCa,
  done: () => Promise<boolean>,
  who: string[] = ca.names,
  maxRounds = 30,
): Promise<void> {
  for (let i = 0; i < maxRounds; i++) {
    if (await done()) return;
    for (const name of who) {
      const c = ca.custodians.get(name)!;
      const res = await c.link.round({ wait: 0, review: false });
      const batch = await c.participant.signTasks(res.tasks);
      c.link.send(...batch.envelopes);
    }
    await new Promise((r) => setImmediate(r)); // scheduled work (package forming) runs, as on a server
  }
  if (!(await done())) throw new Error(`not done after ${maxRounds} exchange rounds`);
}

/** A CA ready to issue: DKG done, root signed and stored, custodians equipped. */
export async function readyCa(names = ["alice", "bob", "carol"], threshold = 2): Promise<InProcessCa> {
  const ca = await newCoordinator(names, threshold);
  const started = await ca.services.ceremonies.start();
  equipCustodians(ca, await runDkg(ca));
  await exchangeUntil(ca, async () => (await ca.services.ceremonies.view(started.id)).status === "complete");
  return ca;
}

/**
 * Hands a job to its kind's completion handler as the signing service does after aggregating (or
 * failing): how a test reaches the release checks with a signature of its choosing.
 */
export function completeJob(
  ca: InProcessCa,
  job: SigningJobRecord,
  signature: Uint8Array | null,
  failure?: string,
): Promise<void> {
  const signing = ca.services.signing as unknown as {
    complete(j: SigningJobRecord, s: Uint8Array | null, f?: string): Promise<void>;
  };
  return signing.complete(job, signature, failure);
}

/** A signed approval (or rejection) of a request's TBS, as a custodian's CLI or agent seals it. */
export function approval(
  ca: InProcessCa,
  from: string,
  request: { id: string; tbsSha256: string },
  decision: "approve" | "reject" = "approve",
  overrides: Partial<ApprovalStatement> = {},
): SignedEnvelope {
  const now = Date.now();
  const body: ApprovalStatement = {
    domain: APPROVAL_DOMAIN,
    caKeyId: ca.caKeyId ?? "0".repeat(64),
    requestId: request.id,
    tbsSha256: request.tbsSha256,
    configDigest: ca.config.digest,
    builderVersion: BUILDER_VERSION,
    decision,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
    ...overrides,
  };
  return sealEnvelope(ca.signers.get(from)!, {
    type: "approval",
    recipient: "coordinator",
    scope: request.id,
    caKeyId: body.caKeyId,
    body,
  });
}

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** A PKCS #10 request (PEM) for a fresh P-256 key, made in process (no openssl). */
export async function makeCsr(
  dnsNames: string[] = ["svc.example.internal"],
  cn = dnsNames[0],
): Promise<string> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: cn ? `CN=${cn}` : "",
    keys: keys as CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: "dns" as const, value }))),
    ],
  });
  return csr.toString("pem");
}
