// `tca serve`: the coordinator process. Binds loopback by default.
import express from "express";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import pino, { type Logger } from "pino";
import type { LoadedConfig } from "../config/load.ts";
import { SqliteStore } from "./store/sqlite.ts";
import { createServices, type CoordinatorServices, type ServiceOptions } from "./services.ts";
import { routes } from "./http/routes.ts";
import { errorHandler } from "./http/problem.ts";

export interface ServeOptions extends ServiceOptions {
  config: LoadedConfig;
  dbPath: string;
  host?: string;
  port?: number;
  logger?: Logger;
}

export interface RunningCoordinator {
  url: string;
  services: CoordinatorServices;
  close(): Promise<void>;
}

export async function startCoordinator(o: ServeOptions): Promise<RunningCoordinator> {
  const log = o.logger ?? pino({ name: "tca-coordinator" });
  const store = new SqliteStore(o.dbPath);
  const services = createServices(store, o.config, o);
  services.signing.startTimer();
  services.revocations.startTimer();
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
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => resolve(s));
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    services,
    close: async () => {
      services.signing.stopTimer();
      services.revocations.stopTimer();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await store.close();
    },
  };
}

/** The route pattern Express matched for `req` (mount path + route path), or "unmatched". */
function routeLabel(req: express.Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  return typeof route?.path === "string" ? `${req.baseUrl}${route.path}` : "unmatched";
}
