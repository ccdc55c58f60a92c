// The read-only web console at /ui/ (docs/console.md), mounted beside the coordinator's API like
// ACME (ServeOptions.extensions): server-rendered HTML (eta templates compiled once at startup),
// htmx 2 for the inventory's live table, one stylesheet, and nothing from elsewhere (strict CSP).
// It reads through the same domain functions as the API and with the same reader rules
// (docs/security-model.md, "Who can read what"); no route changes anything but the session.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import express, { type ErrorRequestHandler, type Request, type Response, type Router } from "express";
import { Eta } from "eta";
import pino, { type Logger } from "pino";
import { z } from "zod";
import type { CoordinatorServices } from "../coordinator/services.ts";
import { CoordinatorError } from "../coordinator/errors.ts";
import { Readers } from "../coordinator/http/auth.ts";
import { CertificateInventory, type InventoryQuery } from "../coordinator/inventory.ts";
import { clock } from "../coordinator/clock.ts";
import { rosterKeys } from "../protocol/envelope.ts";
import { CERTIFICATE_STATUSES, type CertificateView } from "../protocol/certificates.ts";
import { readCrl } from "../x509/crl-read.ts";
import { displaySerial } from "../x509/serial.ts";
import { AUDIT_PAGE_MAX, verifyAuditChain, type AuditEntry } from "../protocol/audit.ts";
import { auditHead, listAudit } from "../coordinator/audit/log.ts";
import { AuditCheckCache } from "./audit-check.ts";
import { chartData, CHART_LIMIT } from "./charts.ts";
import {
  clearEverySession,
  clearSession,
  readerOfToken,
  sameOrigin,
  sessionToken,
  setSession,
  type ConsoleReader,
} from "./session.ts";
import { css } from "./styles.ts";
import { layout } from "./templates/layout.ts";
import { login } from "./templates/login.ts";
import { error as errorPage } from "./templates/error.ts";
import { certificates, certificateTable } from "./templates/certificates.ts";
import { request as requestPage } from "./templates/request.ts";
import { audit, chart, charts, crl, custodians } from "./templates/pages.ts";

export const CONSOLE_PREFIX = "/ui";

/** Sent with every console answer (docs/console.md, "Headers"). */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
};

export interface ConsoleOptions {
  logger?: Logger;
  /** The audit page verifies at most this many entries (default AUDIT_CHECK_LIMIT; tests set less). */
  auditCheckLimit?: number;
}

/**
 * The audit page verifies at most this many entries, the first ones (the rest: `tca audit verify`
 * offline): several seconds of the event loop at the verifier's speed, once per AUDIT_RECHECK_MS at most.
 */
export const AUDIT_CHECK_LIMIT = 20_000;
/** A moved chain head is verified again at most this often (docs/console.md, "The audit page"). */
export const AUDIT_RECHECK_MS = 30_000;
/** The audit page's table: the latest entries. */
const AUDIT_TABLE_ROWS = 200;

/** The table re-renders at least this often even when the change feed is quiet (expiry is time). */
const REFRESH_ANYWAY_MS = 30_000;

const SORTS = [
  { value: "-issued", label: "Newest first" },
  { value: "issued", label: "Oldest first" },
  { value: "notAfter", label: "Expiring soonest" },
  { value: "-notAfter", label: "Expiring latest" },
] as const;

/** Empty form fields mean "no filter". */
const optional = <T extends z.ZodType>(t: T) =>
  z.preprocess((v) => (v === "" || v === undefined ? undefined : v), t.optional());

/** A date from <input type="date"> (RFC 3339 full-date): that day, 00:00 UTC. */
const FullDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date such as 2027-01-31")
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
  }, "is not a date that exists");

const ListForm = z
  .object({
    q: optional(
      z
        .string()
        .max(256, "must be at most 256 characters")
        .regex(/^[^\p{Cc}]*$/u, "must not hold control characters"),
    ),
    status: optional(z.enum(CERTIFICATE_STATUSES)),
    profile: optional(z.string().max(64)),
    requester: optional(z.string().max(128)),
    expiresBefore: optional(FullDate),
    sort: optional(z.enum(SORTS.map((s) => s.value) as [string, ...string[]])),
    cursor: optional(
      z
        .string()
        .max(1024)
        .regex(/^[A-Za-z0-9_-]+$/),
    ),
    seen: optional(z.string().regex(/^\d{1,15}$/)),
    at: optional(z.string().regex(/^\d{1,15}$/)),
  })
  .strict();
type ListForm = z.infer<typeof ListForm>;

const RequestId = z.uuid();

export async function createConsole(services: CoordinatorServices, o: ConsoleOptions = {}): Promise<Router> {
  const log = o.logger ?? pino({ name: "tca-console" });
  const cfg = services.config.config;
  const htmx = readFileSync(createRequire(import.meta.url).resolve("htmx.org/dist/htmx.min.js"));
  const eta = new Eta({ autoEscape: true, cache: true, autoTrim: [false, "nl"] });
  const templates: Record<string, string> = {
    layout,
    login,
    error: errorPage,
    certificates,
    certificateTable,
    request: requestPage,
    custodians,
    crl,
    audit,
    chart,
    charts,
  };
  for (const [name, text] of Object.entries(templates)) eta.loadTemplate(`@${name}`, text);

  // The API's reader rules, over the same ca-config entries (src/coordinator/http/routes.ts).
  const readers = new Readers({
    admins: cfg.admins,
    requesters: cfg.requesters,
    roster: rosterKeys(cfg.custodians),
    nonces: services.store,
    now: () => clock.now(),
  });
  const inventory = new CertificateInventory(services.store, () => services.caCertificate());

  const render = (res: Response, name: string, status: number, data: Record<string, unknown>) => {
    const reader = res.locals.reader as ConsoleReader | undefined;
    const nav = reader
      ? [
          { href: "/ui/certificates", label: "Certificates" },
          { href: "/ui/charts", label: "Charts" },
          { href: "/ui/crl", label: "CRL" },
          ...(reader.kind === "admin"
            ? [
                { href: "/ui/custodians", label: "Custodians" },
                { href: "/ui/audit", label: "Audit" },
              ]
            : []),
        ].map((n) => ({ ...n, current: n.href === data.current }))
      : [];
    res
      .status(status)
      .type("text/html; charset=utf-8")
      .send(eta.render(`@${name}`, { reader, nav, when, ...data }));
  };

  const r = express.Router();
  r.use(CONSOLE_PREFIX, (_req, res, next) => {
    res.set(CONSOLE_HEADERS);
    next();
  });
  const ui = express.Router({ strict: false });
  r.use(CONSOLE_PREFIX, ui);

  ui.get("/assets/htmx.min.js", (_req, res) => {
    res.set("Cache-Control", "public, max-age=3600").type("text/javascript; charset=utf-8").send(htmx);
  });
  ui.get("/assets/console.css", (_req, res) => {
    res.set("Cache-Control", "public, max-age=3600").type("text/css; charset=utf-8").send(css);
  });

  /** Shown when a second console cookie came (session.ts sessionToken): both were cleared. */
  const TOSSED =
    "A second console cookie was found (set by another site on this host) and was cleared. Log in again.";
  ui.get("/login", (req, res) => {
    if (!sessionToken(req).tossed) return render(res, "login", 200, { title: "Log in" });
    clearEverySession(req, res);
    render(res, "login", 200, { title: "Log in", error: TOSSED });
  });
  const form = express.urlencoded({ extended: false, limit: "2kb", parameterLimit: 4 });
  ui.post("/login", form, async (req, res) => {
    if (!sameOrigin(req)) throw new CoordinatorError("FORBIDDEN", "log in from the console's own page");
    const token = (req.body as Record<string, unknown> | undefined)?.token;
    try {
      if (typeof token !== "string") throw new CoordinatorError("UNAUTHORIZED", "no token");
      await readerOfToken(readers, req, token.trim());
    } catch (e) {
      if (!(e instanceof CoordinatorError) || e.code !== "UNAUTHORIZED") throw e;
      render(res, "login", 401, { title: "Log in", error: "That token is not valid. Try again." });
      return;
    }
    if (sessionToken(req).tossed) clearEverySession(req, res);
    setSession(req, res, (token as string).trim());
    res.redirect(303, "/ui/certificates");
  });
  ui.post("/logout", (req, res) => {
    if (!sameOrigin(req)) throw new CoordinatorError("FORBIDDEN", "log out from the console's own page");
    if (sessionToken(req).tossed) clearEverySession(req, res);
    else clearSession(req, res);
    res.redirect(303, "/ui/login");
  });

  // Every other page: the cookie's token, checked like a bearer token on each request.
  ui.use(async (req, res, next) => {
    const { token, tossed } = sessionToken(req);
    if (tossed) {
      clearEverySession(req, res);
      if (req.get("hx-request") === "true") res.status(401).set("HX-Redirect", "/ui/login").end();
      else render(res, "login", 401, { title: "Log in", error: TOSSED });
      return;
    }
    try {
      if (token === undefined) throw new CoordinatorError("UNAUTHORIZED", "not logged in");
      res.locals.reader = await readerOfToken(readers, req, token);
      next();
    } catch (e) {
      if (!(e instanceof CoordinatorError) || e.code !== "UNAUTHORIZED") return next(e);
      if (token !== undefined) clearSession(req, res);
      // htmx follows HX-Redirect with a full page load; a plain redirect would swap the login form
      // into the table.
      if (req.get("hx-request") === "true") res.status(401).set("HX-Redirect", "/ui/login").end();
      else res.redirect(303, "/ui/login");
    }
  });
  const readerOf = (res: Response) => res.locals.reader as ConsoleReader;
  const ownerOf = (res: Response) => {
    const reader = readerOf(res);
    return reader.kind === "requester" ? reader.name : undefined;
  };
  const adminOnly = (res: Response, what: string) => {
    const reader = readerOf(res);
    if (reader.kind !== "admin")
      throw new CoordinatorError("FORBIDDEN", `a ${reader.kind} (${reader.name}) may not read ${what}`);
  };

  ui.get("/", (_req, res) => res.redirect(303, "/ui/certificates"));

  const listData = async (req: Request, res: Response) => {
    const f = parseForm(req);
    const reader = readerOf(res);
    const query: InventoryQuery = {
      ...(f.q !== undefined ? { q: f.q } : {}),
      ...(f.status !== undefined ? { status: f.status } : {}),
      ...(f.profile !== undefined ? { profile: f.profile } : {}),
      ...(f.requester !== undefined ? { requester: f.requester } : {}),
      ...(f.expiresBefore !== undefined ? { expiresBefore: `${f.expiresBefore}T00:00:00.000Z` } : {}),
      ...(f.sort !== undefined ? { sort: f.sort } : {}),
      ...(f.cursor !== undefined ? { cursor: f.cursor } : {}),
      limit: 100,
    };
    const seq = services.hooks.feed.seq;
    const page = await inventory.list(query, ownerOf(res));
    const params = filterParams(f);
    const poll = new URLSearchParams(params);
    if (f.cursor !== undefined) poll.set("cursor", f.cursor);
    poll.set("seen", String(seq));
    poll.set("at", String(clock.now()));
    const next = new URLSearchParams(params);
    if (page.next) next.set("cursor", page.next);
    const requesterEntry = cfg.requesters.find((x) => x.name === reader.name);
    return {
      title: "Certificates",
      current: "/ui/certificates",
      filters: { ...f, expiresBeforeDate: f.expiresBefore },
      statuses: CERTIFICATE_STATUSES,
      sorts: SORTS,
      profiles:
        reader.kind === "requester" && requesterEntry
          ? requesterEntry.profiles
          : Object.keys(cfg.profiles).sort(),
      requesters: reader.kind === "admin" ? cfg.requesters.map((x) => x.name).sort() : [],
      showRequester: reader.kind === "admin",
      rows: page.certificates.map(row),
      next: page.next,
      nextUrl: `/ui/certificates?${next.toString()}`,
      pollUrl: `/ui/certificates/table?${poll.toString()}`,
    };
  };

  ui.get("/certificates", async (req, res) => {
    render(res, "certificates", 200, await listData(req, res));
  });
  // The live table: 204 (htmx keeps what it shows) while nothing changed since it was drawn.
  ui.get("/certificates/table", async (req, res) => {
    const f = parseForm(req);
    if (
      f.seen !== undefined &&
      f.at !== undefined &&
      Number(f.seen) === services.hooks.feed.seq &&
      clock.now() - Number(f.at) < REFRESH_ANYWAY_MS
    ) {
      res.status(204).end();
      return;
    }
    res
      .status(200)
      .type("text/html; charset=utf-8")
      .send(eta.render("@certificateTable", { ...(await listData(req, res)) }));
  });

  ui.get("/requests/:id", async (req, res) => {
    const id = RequestId.safeParse(req.params.id);
    if (!id.success) throw new CoordinatorError("NOT_FOUND", "no such request");
    const owner = ownerOf(res);
    const view = await services.requests.view(id.data, owner !== undefined ? { owner } : {});
    render(res, "request", 200, { title: `Request ${view.id}`, request: view });
  });

  ui.get("/custodians", async (_req, res) => {
    adminOnly(res, "the custodians' contacts");
    const now = clock.now();
    const rows = (await services.hooks.contacts.report(now)).map((c) => {
      const state = c.secondsAgo === null ? "silent" : c.secondsAgo <= 300 ? "recent" : "stale";
      return {
        ...c,
        ago: c.secondsAgo === null ? "" : `${ago(c.secondsAgo)} ago`,
        state,
        stateText:
          state === "silent"
            ? "never heard"
            : state === "recent"
              ? "heard within 5 minutes"
              : "not heard lately",
      };
    });
    render(res, "custodians", 200, {
      title: "Custodians",
      current: "/ui/custodians",
      rows,
      threshold: cfg.threshold,
    });
  });

  ui.get("/crl", async (_req, res) => {
    const latest = await services.store.latestCrl();
    let view = null;
    if (latest) {
      const parsed = readCrl(latest.der);
      view = {
        number: parsed.crlNumber.toString(),
        thisUpdate: parsed.thisUpdate.toISOString(),
        nextUpdate: parsed.nextUpdate.toISOString(),
        stale: parsed.nextUpdate.getTime() < clock.now(),
        entries: parsed.entries.map((e) => ({
          serial: displaySerial(e.serial),
          revokedAt: e.revokedAt.toISOString(),
          reason: e.reason,
        })),
      };
    }
    render(res, "crl", 200, { title: "CRL", current: "/ui/crl", crl: view });
  });

  // The chain is read and checked as `tca audit verify` checks an export (docs/audit.md), its first
  // auditCheckLimit entries, and the verdict kept until the head moves (AuditCheckCache): the verdict
  // is the coordinator's own reading, the offline check is the one that needs no trust in it.
  const auditCheckLimit = o.auditCheckLimit ?? AUDIT_CHECK_LIMIT;
  const auditChecks = new AuditCheckCache({
    now: () => clock.now(),
    minIntervalMs: AUDIT_RECHECK_MS,
    compute: async (head) => {
      const entries: AuditEntry[] = [];
      const upTo = Math.min(head.seq, auditCheckLimit);
      while (entries.length < upTo) {
        const page = await listAudit(
          services.store,
          entries.at(-1)?.seq ?? 0,
          Math.min(AUDIT_PAGE_MAX, upTo - entries.length),
        );
        entries.push(...page);
        if (page.length === 0) break;
      }
      const caPublicKey = await services.caPublicKey();
      // Synchronous: the cache is what keeps this rare (verifying in slices between turns of the
      // event loop would need a resumable verifier).
      // A bounded prefix may end before a later roster change: its end is not compared with ca-config.
      const verdict = verifyAuditChain(entries, {
        config: cfg,
        ...(caPublicKey ? { caPublicKey } : {}),
        ...(entries.length < head.seq ? { prefix: true } : {}),
      });
      return { verdict, read: entries.length };
    },
  });
  ui.get("/audit", async (_req, res) => {
    adminOnly(res, "the audit chain");
    const head = await auditHead(services.store);
    const check = head ? await auditChecks.get(head) : null;
    // The table is the chain's true tail, read apart from the verified prefix.
    const entries = head
      ? await listAudit(services.store, Math.max(0, head.seq - AUDIT_TABLE_ROWS), AUDIT_TABLE_ROWS)
      : [];
    render(res, "audit", 200, {
      title: "Audit",
      current: "/ui/audit",
      verdict: check?.verdict ?? null,
      head,
      checkedAt: check ? new Date(check.at).toISOString() : null,
      checkedHead: check?.head.seq ?? 0,
      read: check?.read ?? 0,
      truncated: head !== null && check !== null && head.seq > check.read,
      capped: check !== null && check.read >= auditCheckLimit && check.head.seq > check.read,
      limit: auditCheckLimit,
      recheckSeconds: AUDIT_RECHECK_MS / 1000,
      entries: entries.reverse(),
    });
  });

  ui.get("/charts", async (_req, res) => {
    const data = await chartData(services.store, clock.now(), ownerOf(res));
    render(res, "charts", 200, {
      title: "Charts",
      current: "/ui/charts",
      ...data,
      limit: CHART_LIMIT,
    });
  });

  ui.use((_req, _res, next) => next(new CoordinatorError("NOT_FOUND", "no such console page")));
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    let status = 500;
    let message = "the console hit an internal error; see the coordinator's log";
    if (err instanceof CoordinatorError) {
      status = err.status;
      message = err.message;
    } else if (typeof (err as { status?: unknown })?.status === "number") {
      const s = (err as { status: number }).status;
      if (s >= 400 && s < 500) {
        status = s;
        message = "the request could not be read";
      }
    }
    if (status >= 500) log.error({ err, path: req.path }, "console: unhandled error");
    const title =
      status === 404 ? "Not found" : status === 403 ? "Not allowed" : status < 500 ? "Refused" : "Error";
    if (req.get("hx-request") === "true") {
      res.status(status).type("text/plain; charset=utf-8").send(message);
      return;
    }
    render(res, "error", status, { title, message });
  };
  ui.use(onError);
  return r;
}

function parseForm(req: Request): ListForm {
  const q = ListForm.safeParse(req.query);
  if (!q.success)
    throw new CoordinatorError(
      "BAD_REQUEST",
      // Only this form's own field names are repeated: an unknown key is the client's text, and an
      // error page that echoes it is a place to inject words into a trusted page.
      `invalid filter: ${q.error.issues
        .map((i) =>
          i.code === "unrecognized_keys" ? "unknown parameter" : `${i.path.join(".")} ${i.message}`,
        )
        .join("; ")}`,
    );
  return q.data;
}

/** The filters of a form as query parameters (no cursor, no poll state). */
function filterParams(f: ListForm): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of ["q", "status", "profile", "requester", "expiresBefore", "sort"] as const) {
    const v = f[k];
    if (v !== undefined) p.set(k, v);
  }
  return p;
}

function row(c: CertificateView) {
  const names = [...new Set([...c.sans.map((s) => s.value)])];
  const cn = /(?:^|,)CN=([^,]*)/.exec(c.subject)?.[1];
  if (names.length === 0 && cn) names.push(cn);
  return {
    ...c,
    names: names.join(", ") || c.subject || "(no name)",
    notAfterText: when(c.notAfter),
    revokedText: c.revokedAt ? `${c.reason ?? "unspecified"}, ${when(c.revokedAt)}` : undefined,
  };
}

/** A time for people: minutes, UTC (the datetime attribute keeps the exact value). */
function when(iso: string): string {
  return `${iso.slice(0, 16).replace("T", " ")} UTC`;
}

function ago(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}
