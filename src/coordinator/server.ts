// `tca serve`: the coordinator process, one replica among any number on one database (several on
// PostgreSQL act as one CA: docs/storage.md). Binds loopback by default.
import express from "express";
import pino, { type Logger } from "pino";
import type { LoadedConfig } from "../config/load.ts";
import { openStore } from "./store/open.ts";
import { createServices, type CoordinatorServices, type ServiceOptions } from "./services.ts";
import { routes } from "./http/routes.ts";
import { errorHandler } from "./http/problem.ts";
import { DEFAULT_HTTP_LIMITS, rateLimit, type HttpLimits } from "./http/limits.ts";
import {
  createListener,
  plainHttpRestriction,
  readStaticTls,
  type Listener,
  type TlsMode,
} from "./http/tls.ts";
import { SelfTls, selfRequester } from "./self-tls.ts";
import { OcspResponder } from "./ocsp/responder.ts";
import { OcspSignerCertificate, ocspRequester } from "./ocsp/signer-cert.ts";

/** How the coordinator serves TLS (docs/tls.md); absent = plain HTTP. */
export type TlsSetting =
  | { mode: "static"; certFile: string; keyFile: string }
  | { mode: "auto"; names: string[]; dir: string; profile: string };

export interface ServeOptions extends ServiceOptions {
  config: LoadedConfig;
  /** A PostgreSQL URL, or a SQLite file (`sqlite:PATH` or a path). */
  database: string;
  host?: string;
  port?: number;
  logger?: Logger;
  /** Timeouts, connection cap and rate limits; unset fields keep DEFAULT_HTTP_LIMITS. */
  limits?: Partial<HttpLimits>;
  tls?: TlsSetting;
  /**
   * Servers of their own mounted beside the coordinator's API, sharing its services and store (ACME,
   * docs/acme.md). Each is built once the store is open, before the server listens.
   */
  extensions?: ((services: CoordinatorServices) => Promise<express.Router>)[];
  /**
   * Run the OCSP responder (docs/ocsp.md): its delegated certificate is requested as ca-config's
   * `ocsp` requester once the root exists, and kept in `dir`. Absent: /ocsp answers unauthorized.
   */
  ocsp?: { dir: string; profile?: string };
}

export interface RunningCoordinator {
  /** The base URL: https:// once TLS is on (static: always; auto: once the certificate is installed). */
  readonly url: string;
  services: CoordinatorServices;
  tls: {
    mode: TlsMode;
    /** Whether this coordinator serves TLS now. */
    readonly active: boolean;
    /** Resolves with the https:// URL once TLS is on. */
    whenActive(): Promise<string>;
    /** Static mode: reads the certificate files again (SIGHUP); keeps the old ones if they are refused. */
    reload(): void;
  };
  /** The OCSP responder: "off", "waiting" for its certificate, or "ready". */
  ocsp: OcspResponder;
  close(): Promise<void>;
}

export async function startCoordinator(o: ServeOptions): Promise<RunningCoordinator> {
  const log = o.logger ?? pino({ name: "tca-coordinator" });
  // Refused before anything opens: unreadable, expired or mismatched material, or no requester to
  // ask for the coordinator's own certificate.
  const staticTls = o.tls?.mode === "static" ? readStaticTls(o.tls.certFile, o.tls.keyFile) : undefined;
  const self =
    o.tls?.mode === "auto" ? selfRequester(o.config.config, o.tls.profile, o.tls.names) : undefined;
  const store = await openStore(o.database);
  const services = createServices(store, o.config, o);
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      if (req.method !== "GET" || res.statusCode >= 400) {
        log.info(
          {
            method: req.method,
            path: req.path,
            status: res.statusCode,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          },
          "request",
        );
      }
    });
    next();
  });
  // http_requests_total{method, route}: the matched pattern, never the raw URL (bounded labels).
  const httpRequests = services.hooks.metrics.httpRequests;
  app.use((req, res, next) => {
    res.once("close", () => httpRequests.inc({ method: req.method, route: routeLabel(req) }));
    next();
  });
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...o.limits };
  const mode: TlsMode = o.tls?.mode ?? "plain";
  const listener: Listener = createListener(app, limits, mode, log, staticTls);
  app.use(rateLimit(limits));
  // Auto mode, once TLS is on: plain HTTP keeps only the public routes and the custodians' envelopes.
  if (mode === "auto") app.use(plainHttpRestriction(() => listener.tlsActive));
  try {
    for (const extension of o.extensions ?? []) app.use(await extension(services));
  } catch (e) {
    await store.close();
    throw e;
  }
  const ocsp = new OcspResponder({
    source: {
      caCertificate: services.caCertificate,
      certificate: (serial) => store.getCertificate(serial),
    },
    log,
  });
  app.use(routes(services, { ocsp }));
  app.use((_req, res) => {
    res.status(404).type("application/problem+json").json({
      type: "https://tca.dev/problems/not-found",
      title: "Not found",
      status: 404,
      detail: "no such endpoint",
      code: "NOT_FOUND",
    });
  });
  app.use(errorHandler(log));
  let address: string;
  let port: number;
  try {
    ({ address, port } = await listener.listen(o.port ?? 0, o.host ?? "127.0.0.1"));
  } catch (e) {
    await store.close();
    const code = (e as NodeJS.ErrnoException).code;
    const where = `${o.host ?? "127.0.0.1"}:${o.port ?? 0}`;
    throw new Error(
      code === "EADDRINUSE"
        ? `cannot listen on ${where}: the port is in use (another tca? pass --port 0 for any free port)`
        : `cannot listen on ${where}: ${(e as Error).message}`,
    );
  }
  const host = address.includes(":") ? `[${address}]` : address;
  const plainUrl = `http://${host}:${port}`;
  const httpsUrl = `https://${host}:${port}`;
  const url = mode === "static" ? httpsUrl : plainUrl;
  // Periodic work runs on one replica at a time: the holder of its lease.
  await services.replica.start(url);
  services.signing.startTimer(250, services.replica.lease("signing.tick", 3_000));
  services.revocations.startTimer(60_000, services.replica.lease("crl.reissue", 180_000));
  services.checkpoints.startTimer(60_000, services.replica.lease("audit.checkpoint", 180_000));
  log.info({ url, replica: services.replica.id, storage: store.location, tls: mode }, "coordinator ready");
  // After a reshare or repair, until restarted with the ca-config the custodians signed, this
  // coordinator relays ceremonies and roster changes but signs nothing (docs/key-lifecycle.md).
  const mismatch = await services.keyState.mismatch().catch(() => null);
  if (mismatch) log.warn(mismatch);
  let selfTls: SelfTls | undefined;
  if (o.tls?.mode === "auto" && self) {
    selfTls = new SelfTls({
      requests: services.requests,
      caCertificate: services.caCertificate,
      requester: self,
      profile: o.tls.profile,
      names: o.tls.names,
      dir: o.tls.dir,
      log,
      install: (m) => listener.install(m),
    });
    selfTls.start();
  }
  let ocspCert: OcspSignerCertificate | undefined;
  if (o.ocsp) {
    try {
      ocspCert = new OcspSignerCertificate({
        requests: services.requests,
        caCertificate: services.caCertificate,
        requester: ocspRequester(o.config.config, o.ocsp.profile),
        ...(o.ocsp.profile ? { profile: o.ocsp.profile } : {}),
        dir: o.ocsp.dir,
        log,
        responder: ocsp,
      });
      ocspCert.start();
    } catch (e) {
      ocsp.off((e as Error).message);
    }
  }
  let current = staticTls;
  if (process.env.TCA_CRASH_AT)
    log.warn(
      { crashAt: process.env.TCA_CRASH_AT },
      "TCA_CRASH_AT is set: this coordinator kills itself at that step (a test setting: unset it)",
    );
  return {
    get url() {
      return listener.tlsActive ? httpsUrl : plainUrl;
    },
    services,
    ocsp,
    tls: {
      mode,
      get active() {
        return listener.tlsActive;
      },
      whenActive: () => listener.whenTlsActive().then(() => httpsUrl),
      reload: () => {
        if (o.tls?.mode !== "static") return;
        try {
          const next = readStaticTls(o.tls.certFile, o.tls.keyFile);
          listener.install(next);
          log.info(
            { serial: next.serial, previous: current?.serial, notAfter: next.notAfter.toISOString() },
            "TLS: certificate reloaded",
          );
          current = next;
        } catch (e) {
          log.error(
            { err: (e as Error).message },
            "TLS: reload refused; still serving the previous certificate",
          );
        }
      },
    },
    close: async () => {
      selfTls?.stop();
      ocspCert?.stop();
      services.exchange.closing();
      services.signing.stopTimer();
      services.revocations.stopTimer();
      services.checkpoints.stopTimer();
      services.replica.stop();
      services.hooks.close();
      // Long-polls (agents' exchanges, requesters' waits) would hold the close for up to their wait:
      // cut them after a moment. Their clients move to another replica and send again (docs/architecture.md
      // §3: envelopes are idempotent; reads are reads).
      await listener.close(1_000);
      await services.replica.retire().catch(() => undefined);
      await store.close();
    },
  };
}

/** The route pattern Express matched for `req` (mount path + route path), or "unmatched". */
function routeLabel(req: express.Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  return typeof route?.path === "string" ? `${req.baseUrl}${route.path}` : "unmatched";
}
