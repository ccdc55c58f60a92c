// The key lifecycle's routes (docs/key-lifecycle.md):
//   POST /api/v1/roster/signatures          a custodian's signature on a roster change (the
//                                           signature authenticates it: no token)
//   GET  /api/v1/roster                     (admin, custodian) the key state and the changes on file
//   POST /api/v1/lifecycle                  (admin) start a refresh, reshare or repair
//   GET  /api/v1/lifecycle/{id}             (admin, custodian, participant) a ceremony; "current"
//   GET  /api/v1/lifecycle/{id}/messages    (same) one stage's envelopes; ?type=&wait= long-poll
//   POST /api/v1/lifecycle/{id}/messages    a participant's signed envelope (any relay)
//   POST /api/v1/lifecycle/{id}/cancel      (admin) fail a ceremony in progress; {reason}
//
// Readers: the roster in force is not always the ca-config's (after a reshare or repair, until the
// coordinator restarts with the new ca-config), and a reshare's new custodians or a repaired
// custodian's new identity are in no ca-config yet. So custodian reads here are checked against the
// ca-config's roster, the roster in force and the ceremony's plan (its participants' keys win for
// their names). What they read is the relay of signed, public ceremony messages: values in it are
// HPKE-sealed to their recipients.
import express, { type Request, type Router } from "express";
import { z } from "zod";
import type { CoordinatorServices } from "../services.ts";
import { authenticate, Readers, type ReaderKind } from "../http/auth.ts";
import { decimalInt, parseQuery } from "../http/query.ts";
import { rosterKeys } from "../../protocol/envelope.ts";
import { LifecycleMessageTypeSchema, planSigningKeys } from "../../protocol/lifecycle.ts";
import { rosterSigningKeys } from "../../protocol/roster.ts";
import { clock } from "../clock.ts";
import { CoordinatorError } from "../errors.ts";

const LIMIT = "512kb";
const MessagesQuery = z
  .object({ type: LifecycleMessageTypeSchema, wait: decimalInt(0, 30).default(0) })
  .strict();

export function lifecycleRoutes(r: Router, s: CoordinatorServices): void {
  const json = express.json({ limit: LIMIT });
  const requireJson: express.RequestHandler = (req, _res, next) => {
    if (req.body === undefined)
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        "send a JSON body with Content-Type: application/json",
      );
    next();
  };
  // One Readers per key set (they change only with a ceremony), built on first use.
  const cache = new Map<string, Readers>();
  const readersFor = (keys: Map<string, string>): Readers => {
    const k = JSON.stringify([...keys].sort());
    let hit = cache.get(k);
    if (!hit) {
      if (cache.size > 16) cache.clear();
      hit = new Readers({
        admins: s.config.config.admins,
        requesters: s.config.config.requesters,
        roster: keys,
        nonces: s.store,
        now: () => clock.now(),
      });
      cache.set(k, hit);
    }
    return hit;
  };
  /** ca-config's roster, then the roster in force, then the ceremony's participants (later wins). */
  const require = async (req: Request, what: string, ceremony?: string) => {
    const keys = rosterKeys(s.config.config.custodians);
    const ks = await s.keyState.current();
    if (ks) for (const [n, k] of rosterSigningKeys(ks.state.roster)) keys.set(n, k);
    const plan = ceremony !== undefined ? await s.lifecycle.planOf(ceremony) : undefined;
    if (plan) for (const [n, k] of planSigningKeys(plan)) keys.set(n, k);
    const kinds: ReaderKind[] = ["admin", "custodian"];
    return readersFor(keys).require(req, kinds, what);
  };

  r.post("/api/v1/roster/signatures", json, requireJson, async (req, res) => {
    res.json(await s.roster.submit(req.body));
  });
  r.get("/api/v1/roster", async (req, res) => {
    await require(req, "the roster");
    res.json(await s.roster.view());
  });

  r.post("/api/v1/lifecycle", json, requireJson, async (req, res) => {
    authenticate(req, s.config.config.admins, "admin");
    res.status(201).json(await s.lifecycle.start(req.body));
  });
  r.get("/api/v1/lifecycle/:id", async (req, res) => {
    const id = String(req.params.id);
    await require(req, "lifecycle ceremonies", id);
    res.json(await s.lifecycle.view(id));
  });
  // Long-poll with ?wait=S: answers once every sender of `type` has sent it or the ceremony ended.
  r.get("/api/v1/lifecycle/:id/messages", async (req, res) => {
    const id = String(req.params.id);
    await require(req, "lifecycle ceremony messages", id);
    const q = parseQuery(
      MessagesQuery,
      req.query,
      "query parameter type must name a lifecycle message type, and wait be 0-30 seconds",
    );
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    res.json(await s.lifecycle.messages(id, q.type, { waitMs: q.wait * 1000, signal: gone.signal }));
  });
  // The body is optional: a bare POST cancels with no reason given.
  r.post("/api/v1/lifecycle/:id/cancel", json, async (req, res) => {
    const admin = authenticate(req, s.config.config.admins, "admin");
    if (req.body === undefined && Number(req.headers["content-length"] ?? 0) > 0)
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        "send a JSON body with Content-Type: application/json (or no body)",
      );
    res.json(await s.lifecycle.cancel(String(req.params.id), admin, req.body));
  });
  r.post("/api/v1/lifecycle/:id/messages", json, requireJson, async (req, res) => {
    res.status(202).json(await s.lifecycle.receive(String(req.params.id), req.body));
  });
}
