// docs/architecture.md §3.3: every custodian message is signed over its exact bytes, bound to its context,
// and replay-proof. These tests alter each part and expect the receiver to refuse, naming the sender.
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { openEnvelope, ReplayGuard, sealEnvelope } from "../../src/protocol/envelope.ts";

const alice = { name: "alice", signingSecret: randomBytes(32) };
const bob = { name: "bob", signingSecret: randomBytes(32) };
const roster = new Map([
  ["alice", Buffer.from(ed25519.getPublicKey(alice.signingSecret)).toString("base64url")],
  ["bob", Buffer.from(ed25519.getPublicKey(bob.signingSecret)).toString("base64url")],
]);
const msg = {
  type: "sign/share" as const,
  recipient: "coordinator",
  scope: "job-1",
  caKeyId: "a".repeat(64),
  body: { share: "00" },
};

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string; culprit?: string }).code + (e as { culprit?: string }).culprit!;
  }
  return "accepted";
};

describe("signed envelopes", () => {
  it("opens what a roster member sealed, with the context it was sealed for", () => {
    const h = openEnvelope(sealEnvelope(alice, msg), roster, {
      type: "sign/share",
      scope: "job-1",
      caKeyId: "a".repeat(64),
      recipient: "coordinator",
    });
    expect(h.sender).toBe("alice");
    expect(h.body).toEqual({ share: "00" });
  });

  it("refuses a payload changed after signing, naming the claimed sender", () => {
    const env = sealEnvelope(alice, msg);
    const json = JSON.parse(Buffer.from(env.payload, "base64url").toString()) as { body: { share: string } };
    json.body.share = "01";
    expect(
      code(() =>
        openEnvelope({ ...env, payload: Buffer.from(JSON.stringify(json)).toString("base64url") }, roster),
      ),
    ).toBe("ENVELOPE_BAD_SIGNATURE" + "alice");
  });

  it("refuses a message signed by one member but claiming to be from another", () => {
    const env = sealEnvelope({ ...bob, name: "alice" }, msg);
    expect(code(() => openEnvelope(env, roster))).toBe("ENVELOPE_BAD_SIGNATURE" + "alice");
  });

  it("refuses senders outside the roster and malformed envelopes", () => {
    expect(
      code(() =>
        openEnvelope(sealEnvelope({ name: "mallory", signingSecret: randomBytes(32) }, msg), roster),
      ),
    ).toMatch(/^ENVELOPE_UNKNOWN_SENDER/);
    expect(code(() => openEnvelope({ payload: "!!", signature: "x" }, roster))).toMatch(
      /^ENVELOPE_MALFORMED/,
    );
    expect(code(() => openEnvelope("nope", roster))).toMatch(/^ENVELOPE_MALFORMED/);
  });

  it.each([
    ["type", { type: "sign/refusal" as const }],
    ["scope", { scope: "job-2" }],
    ["recipient", { recipient: "bob" }],
    ["CA key id", { caKeyId: "b".repeat(64) }],
  ])("refuses a message replayed into another %s", (_what, expected) => {
    const env = sealEnvelope(alice, msg);
    expect(code(() => openEnvelope(env, roster, expected))).toBe("ENVELOPE_WRONG_CONTEXT" + "alice");
  });

  it("signs with RFC 8032 Ed25519 exactly as noble does, and refuses a malformed roster key", () => {
    const env = sealEnvelope(alice, msg);
    const signed = Buffer.concat([Buffer.from("tca/envelope/v1\n"), Buffer.from(env.payload, "base64url")]);
    const sig = Buffer.from(env.signature, "base64url");
    expect(Buffer.from(ed25519.sign(signed, alice.signingSecret)).equals(sig)).toBe(true);
    expect(ed25519.verify(sig, signed, ed25519.getPublicKey(alice.signingSecret))).toBe(true);
    const broken = new Map([["alice", Buffer.alloc(31, 1).toString("base64url")]]);
    expect(code(() => openEnvelope(env, broken))).toBe("ENVELOPE_BAD_SIGNATURE" + "alice");
  });

  it("a receiver accepts each message id once", () => {
    const guard = new ReplayGuard();
    const h = openEnvelope(sealEnvelope(alice, msg), roster);
    guard.accept(h);
    expect(() => guard.accept(h)).toThrow(
      expect.objectContaining({ code: "ENVELOPE_REPLAYED", culprit: "alice" }),
    );
  });

  it("gives every message a fresh id and an increasing sequence number", () => {
    const a = openEnvelope(sealEnvelope(alice, msg), roster);
    const b = openEnvelope(sealEnvelope(alice, msg), roster);
    expect(a.id).not.toBe(b.id);
    expect(b.seq).toBeGreaterThan(a.seq);
  });
});
