// Prometheus metrics (GET /metrics). Counters move when things happen; request counts by status are
// read from the store at scrape time so they are right after a restart too.
import { REQUEST_STATUSES } from "../protocol/enums.ts";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RequestStatus, Store } from "./store/types.ts";

const STATUSES: readonly RequestStatus[] = REQUEST_STATUSES;

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly approvals = new Counter({
    name: "tca_approvals_total",
    help: "Custodian decisions received",
    labelNames: ["custodian", "decision"],
    registers: [this.registry],
  });
  readonly signingFailures = new Counter({
    name: "tca_signing_failures_total",
    help: "Signing session faults, by custodian and kind (bad-share, refusal, timeout)",
    labelNames: ["custodian", "kind"],
    registers: [this.registry],
  });
  readonly exchangeItems = new Counter({
    name: "tca_exchange_items_total",
    help: "Envelopes in custodian exchanges, by custodian, type and result (accepted, refused, error)",
    labelNames: ["custodian", "type", "result"],
    registers: [this.registry],
  });
  readonly issued = new Counter({
    name: "tca_certificates_issued_total",
    help: "Certificates issued",
    labelNames: ["profile"],
    registers: [this.registry],
  });
  readonly submitted = new Counter({
    name: "tca_requests_submitted_total",
    help: "Certificate requests accepted",
    labelNames: ["profile"],
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: "tca_revocations_total",
    help: "Certificates revoked",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly crls = new Counter({
    name: "tca_crls_signed_total",
    help: "CRLs signed by the threshold",
    registers: [this.registry],
  });
  /**
   * Every HTTP request answered (or abandoned by its client), by method and the matched route
   * pattern (`/api/v1/requests/:id`, never the raw URL, so the label set stays bounded;
   * "unmatched" when no route matched). `npm run bench` divides it by certificates issued.
   */
  readonly httpRequests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests received, by method and matched route pattern",
    labelNames: ["method", "route"],
    registers: [this.registry],
  });
  readonly issuanceSeconds = new Histogram({
    name: "tca_issuance_seconds",
    help: "Time from request submission to issuance",
    labelNames: ["profile"],
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400],
    registers: [this.registry],
  });

  constructor(store: Store) {
    new Gauge({
      name: "tca_requests",
      help: "Certificate requests by status",
      labelNames: ["status"],
      registers: [this.registry],
      async collect() {
        const counts = await store.countRequestsByStatus();
        for (const s of STATUSES) this.set({ status: s }, counts[s] ?? 0);
      },
    });
  }
}
