// The ACME server (RFC 8555), a world of its own beside the coordinator's API (docs/acme.md): it
// validates control of names, and a finalized order becomes a tca request that the custodians still
// decide on, each by its own policy. Mounted by `tca serve` when ca-config has an `acme` section.
import express, { type ErrorRequestHandler, type Request, type Router } from "express";
import pino from "pino";
import { ZodError } from "zod";
import type { CoordinatorServices } from "../coordinator/services.ts";
import { CoordinatorError } from "../coordinator/errors.ts";
import type { AcmeContext, AcmeOptions } from "./context.ts";
import { AcmeProblem } from "./problems.ts";
import { acmeUrls, ACME_PREFIX, ROUTES } from "./paths.ts";
import { sendJson } from "./http.ts";
import type { AcmeDatabase } from "./store/schema.ts";
import { acmeMigrations } from "./store/migrations.ts";
import { issueNonce, registerNonceRoutes } from "./nonces.ts";
import { registerAccountRoutes } from "./accounts.ts";
import { registerOrderRoutes } from "./orders.ts";
import { registerFinalizeRoutes } from "./finalize.ts";
import { registerRevocation } from "./revoke.ts";
import { registerRenewalInfo } from "./renewal-info.ts";
import type { AcmeDirectory } from "./protocol.ts";

/** Host header characters: a name, IPv4, or [IPv6], and a port. Anything else is refused. */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** Creates the ACME tables if needed and returns the router to mount (before the coordinator's 404). */
export async function createAcme(services: CoordinatorServices, options: AcmeOptions): Promise<Router> {
  const config = services.config.config.acme;
  if (!config) throw new Error("ca-config has no acme section");
  await services.store.migrateModule("acme", acmeMigrations());
  const ctx: AcmeContext = {
    services,
    config,
    options,
    log: options.logger ?? pino({ name: "tca-acme" }),
    db: () => services.store.queryBuilder<AcmeDatabase>(),
    baseUrl: (req: Request) => {
      const host = req.headers.host ?? "";
      if (!HOST.test(host))
        throw new AcmeProblem("malformed", "the Host header is missing or not a host name");
      return `${req.protocol}://${host}`;
    },
  };
  const r = express.Router();
  // Every answer to a POST, and newNonce, carries a fresh nonce (RFC 8555 §6.5, §7.2); every answer
  // a link to the directory (§7.1); nothing is cached. A nonce is a database row, so GETs of the
  // directory or of renewal information do not make one.
  r.use(ACME_PREFIX, async (req, res, next) => {
    try {
      res.set("Cache-Control", "no-store");
      if (req.method === "POST" || req.path === ROUTES.newNonce.slice(ACME_PREFIX.length))
        res.set("Replay-Nonce", await issueNonce(ctx));
      res.append("Link", `<${ctx.baseUrl(req)}${ROUTES.directory}>;rel="index"`);
      next();
    } catch (e) {
      next(e);
    }
  });
  r.get(ROUTES.directory, (req, res) => {
    const u = acmeUrls(ctx.baseUrl(req));
    const profiles = Object.fromEntries(
      config.profiles.map((p) => [p, services.config.config.profiles[p]?.description ?? p]),
    );
    const directory: AcmeDirectory = {
      newNonce: u.newNonce,
      newAccount: u.newAccount,
      newOrder: u.newOrder,
      revokeCert: u.revokeCert,
      keyChange: u.keyChange,
      renewalInfo: u.renewalInfo,
      meta: { externalAccountRequired: !config.openRegistration, profiles },
    };
    sendJson(res, 200, directory);
  });
  registerNonceRoutes(r, ctx);
  registerAccountRoutes(r, ctx);
  registerOrderRoutes(r, ctx);
  registerFinalizeRoutes(r, ctx);
  registerRevocation(r, ctx);
  registerRenewalInfo(r, ctx);
  r.use(ACME_PREFIX, (_req, _res, next) =>
    next(new AcmeProblem("malformed", "no such ACME resource", { status: 404 })),
  );
  r.use(ACME_PREFIX, acmeErrorHandler(ctx));
  return r;
}

/** The 4xx status of an error the body parser threw (http-errors), if it is one. */
function clientError(err: unknown): number | undefined {
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

function acmeErrorHandler(ctx: AcmeContext): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    let p: AcmeProblem;
    if (err instanceof AcmeProblem) p = err;
    else if (err instanceof ZodError)
      p = new AcmeProblem(
        "malformed",
        `the payload is malformed: ${err.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`).join("; ")}`,
      );
    else if (err instanceof CoordinatorError)
      p =
        err.status >= 500
          ? new AcmeProblem("serverInternal", err.message, { status: err.status })
          : new AcmeProblem("malformed", err.message, { status: err.status });
    else if ((err as { type?: unknown })?.type === "entity.too.large")
      p = new AcmeProblem("malformed", "the request body is larger than ACME accepts", { status: 413 });
    else if ((err as { type?: unknown })?.type === "entity.parse.failed")
      p = new AcmeProblem("malformed", "the request body is not a JSON flattened JWS");
    else if (clientError(err))
      // The body parser's other refusals: an unsupported charset or content encoding, a bad length.
      p = new AcmeProblem("malformed", `the request body could not be read: ${(err as Error).message}`, {
        status: clientError(err)!,
      });
    else {
      ctx.log.error({ err }, "ACME: unhandled error");
      p = new AcmeProblem("serverInternal", "the ACME server hit an internal error; see its log");
    }
    if (p.retryAfter !== undefined) res.set("Retry-After", String(p.retryAfter));
    res.status(p.status).type("application/problem+json").send(JSON.stringify(p.document()));
  };
}
