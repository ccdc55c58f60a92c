// The coordinator's own-certificate loop (src/coordinator/self-cert.ts) against a fake intake whose
// custodians reject every request: it asks again after a minute, then waits twice as long after
// each further rejection, up to an hour, instead of asking every minute for ever.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { RequestView } from "../../src/protocol/approval.ts";
import type { Requester } from "../../src/config/schema.ts";
import {
  SELF_CERT_MAX_RETRY_MS,
  SELF_CERT_RETRY_MS,
  SelfCertificate,
} from "../../src/coordinator/self-cert.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-self-cert-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("SelfCertificate after rejections", () => {
  it("backs off exponentially, 1 min doubling up to 1 h", async () => {
    let now = 1_700_000_000_000;
    const submitted: number[] = [];
    const loop = new SelfCertificate({
      label: "TEST",
      what: "a test certificate",
      requests: {
        submit: async () => {
          submitted.push(now);
          return { id: `r${submitted.length}` } as RequestView;
        },
        view: async (id) => ({ id, status: "rejected" }) as RequestView,
        certificateChain: async () => "",
      },
      caCertificate: async () => new Uint8Array([0x30, 0x00]),
      requester: { name: "ocsp" } as Requester,
      profile: "ocsp-responder",
      subject: "CN=test",
      dir,
      log: pino({ level: "silent" }),
      install: () => undefined,
      now: () => now,
    });
    // Ticks every second for a while; each request is rejected at the tick after it was made.
    const tickFor = async (ms: number) => {
      for (const end = now + ms; now < end; now += 1_000) await loop.tick();
    };
    await tickFor(12 * 3_600_000);
    const gaps = submitted.slice(1).map((t, i) => t - submitted[i]!);
    // The gap between two requests: one tick to see the rejection, then the wait.
    const waits = gaps.map((g) => g - 1_000);
    expect(waits.slice(0, 8)).toEqual([1, 2, 4, 8, 16, 32, 60, 60].map((m) => m * SELF_CERT_RETRY_MS));
    expect(Math.max(...waits)).toBe(SELF_CERT_MAX_RETRY_MS);
    expect(submitted.length).toBeLessThan(20); // not 720, as at one a minute
  });
});
