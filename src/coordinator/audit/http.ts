// GET /api/v1/audit?after=N&limit=M (docs/audit.md): a page of the audit chain, in order, and its
// head. It holds every CSR, TBS and custodian statement, so it reads like signing jobs do
// (docs/security-model.md): an admin token or a custodian's signed read.
import type { Router } from "express";
import { z } from "zod";
import type { CoordinatorServices } from "../services.ts";
import { AUDIT_PAGE_MAX, type AuditPage } from "../../protocol/audit.ts";
import type { Readers } from "../http/auth.ts";
import { decimalInt, parseQuery } from "../http/query.ts";
import { auditHead, listAudit } from "./log.ts";

const DEFAULT_PAGE = 200;

const AuditQuery = z
  .object({
    after: decimalInt(0, Number.MAX_SAFE_INTEGER).default(0),
    limit: decimalInt(1, AUDIT_PAGE_MAX).default(DEFAULT_PAGE),
  })
  .strict();

export function auditRoutes(r: Router, s: CoordinatorServices, readers: () => Readers): void {
  r.get("/api/v1/audit", async (req, res) => {
    await readers().require(req, ["admin", "custodian"], "the audit chain");
    const q = parseQuery(AuditQuery, req.query, "cannot read the audit chain");
    // Head first: entries appended between the two reads are beyond it, never missing before it.
    const head = await auditHead(s.store);
    const entries = head && q.after < head.seq ? await listAudit(s.store, q.after, q.limit) : [];
    const page: AuditPage = { entries: entries.filter((e) => e.seq <= (head?.seq ?? 0)), head };
    res.json(page);
  });
}
