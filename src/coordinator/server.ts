// `tca serve`: the coordinator process, one replica among any number on one database (several on
// PostgreSQL act as one CA: docs/storage.md). Binds loopback by default.
import express from "express";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import pino, { type Logger } from "pino";
import type { LoadedConfig } from "../config/load.ts";
import { openStore } from "./store/open.ts";
import { createServices, type CoordinatorServices, type ServiceOptions } from "./services.ts";
import { routes } from "./http/routes.ts";
import { errorHandler } from "./http/problem.ts";
import { applyServerLimits, DEFAULT_HTTP_LIMITS, rateLimit, type HttpLimits } from "./http/limits.ts";

export interface ServeOptions extends ServiceOptions {
  config: LoadedConfig;
  /** A PostgreSQL URL, or a SQLite file (`sqlite:PATH` or a path). */
  database: string;
  host?: string;
  port?: number;
  logger?: Logger;
  /** Timeouts, connection cap and rate limits; unset fields keep DEFAULT_HTTP_LIMITS. */
  limits?: Partial<HttpLimits>;
}

export interface RunningCoordinator {
  url: string;
  services: CoordinatorServices;
  close(): Promise<void>;
}

export async function startCoordinator(o: ServeOptions): Promise<RunningCoordinator> {
  const log = o.logger ?? pino({ name: "tca-coordinator" });
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
  app.use(rateLimit(limits));
  app.use(routes(services));
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
  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      // Express 5 calls this back with the error when listening fails (EADDRINUSE…).
      const s = app.listen(o.port ?? 0, o.host ?? "127.0.0.1", (err?: Error) =>
        err ? reject(err) : resolve(s),
      );
      applyServerLimits(s, limits); // synchronously, before "listening": see limits.ts
      s.once("error", reject);
    });
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
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  // Periodic work runs on one replica at a time: the holder of its lease.
  await services.replica.start(url);
  services.signing.startTimer(250, services.replica.lease("signing.tick", 3_000));
  services.revocations.startTimer(60_000, services.replica.lease("crl.reissue", 180_000));
  log.info({ url, replica: services.replica.id, storage: store.location }, "coordinator ready");
  if (process.env.TCA_CRASH_AT)
    log.warn(
      { crashAt: process.env.TCA_CRASH_AT },
      "TCA_CRASH_AT is set: this coordinator kills itself at that step (a test setting: unset it)",
    );
  return {
    url,
    services,
    close: async () => {
      services.exchange.closing();
      services.signing.stopTimer();
      services.revocations.stopTimer();
      services.replica.stop();
      services.hooks.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Long-polls (agents' exchanges, requesters' waits) would hold the close for up to their wait:
      // cut them after a moment. Their clients move to another replica and send again (DESIGN §3:
      // envelopes are idempotent; reads are reads).
      const cut = setTimeout(() => server.closeAllConnections(), 1_000);
      await closed;
      clearTimeout(cut);
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
