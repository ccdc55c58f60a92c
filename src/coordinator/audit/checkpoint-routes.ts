// POST /api/v1/audit/checkpoints (admin): asks the custodians to threshold-sign the audit chain's
// head now (docs/audit.md), rather than at the next periodic checkpoint. The answer says whether a
// job started, one was running already, or nothing was appended since the last checkpoint; the
// `checkpoint` entry follows once t custodians have signed.
import type { Router } from "express";
import type { CoordinatorServices } from "../services.ts";
import { authenticate } from "../http/auth.ts";

export function checkpointRoutes(r: Router, s: CoordinatorServices): void {
  r.post("/api/v1/audit/checkpoints", async (req, res) => {
    authenticate(req, s.config.config.admins, "admin");
    const out = await s.store.transaction(() => s.checkpoints.request());
    res.status(out.status === "started" ? 202 : 200).json(out);
  });
}
