// An agent and a CA certificate installed on the coordinator that it has not adopted yet
// (docs/intermediate.md): a request whose TBS differs from the one the agent derives is not skipped
// for good; the agent looks at the coordinator's CA certificate at once and reviews the request
// again once its own CA certificate changed (and only then: not every round under the same one).
import pino from "pino";
import { describe, expect, it } from "vitest";
import { CustodianAgent } from "../../src/custodian/agent.ts";
import { PolicySchema } from "../../src/custodian/policy.ts";
import type { CustodianSession, Review } from "../../src/custodian/session.ts";
import type { ReviewItem } from "../../src/protocol/signing-messages.ts";

const DIFFERS =
  "the coordinator's TBS differs from the one this custodian derived from the CSR and its own ca-config";

describe("agent review around a CA certificate install", () => {
  it("a TBS mismatch triggers a CA look and a later re-review, not a permanent skip", () => {
    let caCert = new Uint8Array([1]);
    const reviewed: Uint8Array[] = [];
    const session = {
      get caCert() {
        return caCert;
      },
      journal: { decisionOn: () => undefined },
      reviewItem(item: ReviewItem): Review<ReviewItem> {
        reviewed.push(caCert);
        const problem = caCert[0] === 1 ? DIFFERS : undefined;
        return {
          request: item,
          tbs: { subject: "CN=svc.test", sans: [] },
          commonNames: ["svc.test"],
          ...(problem ? { problem } : {}),
        } as unknown as Review<ReviewItem>;
      },
    } as unknown as CustodianSession;
    const agent = new CustodianAgent(session, PolicySchema.parse({ version: 1 }), pino({ level: "silent" }));
    const internals = agent as unknown as { review(items: ReviewItem[]): void };
    const item = { id: "00000000-0000-4000-8000-000000000001", requester: "r", profile: "server", tbsSha256: "00" } as unknown as ReviewItem; // prettier-ignore

    internals.review([item]);
    expect(reviewed).toHaveLength(1);
    internals.review([item]); // same CA certificate: not derived again
    expect(reviewed).toHaveLength(1);
    caCert = new Uint8Array([2]); // the agent adopted the coordinator's new CA certificate
    internals.review([item]);
    expect(reviewed).toHaveLength(2);
    expect(agent.counters.skipped).toBe(2); // skipped under the old one, then left for a person
    internals.review([item]); // decided once under the new one: not again
    expect(reviewed).toHaveLength(2);
  });
});
