// RFC 9591 Appendix E.1 FROST(Ed25519, SHA-512) vectors, read as data from test/vectors and run
// through the project's threshold module (commit → signShare → aggregate) on every group backend.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { FROST_BACKENDS, frostSuite } from "../../src/threshold/suite.ts";
import { aggregateSignature, signShare, verifySignatureShare } from "../../src/threshold/sign.ts";
import { bytesToHex, hexToBytes } from "../../src/threshold/encoding.ts";
import type { FrostPublic } from "../../src/threshold/suite.ts";

const vectorsPath = fileURLToPath(
  new URL("../../../shared/vectors/frost-ed25519-sha512.json", import.meta.url),
);
const localCopy = fileURLToPath(new URL("../vectors/frost-ed25519-sha512.json", import.meta.url));

interface Vectors {
  config: { MAX_PARTICIPANTS: string; MIN_PARTICIPANTS: string; name: string };
  inputs: {
    participant_list: number[];
    group_public_key: string;
    message: string;
    participant_shares: { identifier: number; participant_share: string }[];
  };
  round_one_outputs: {
    outputs: {
      identifier: number;
      hiding_nonce_randomness: string;
      binding_nonce_randomness: string;
      hiding_nonce: string;
      binding_nonce: string;
      hiding_nonce_commitment: string;
      binding_nonce_commitment: string;
    }[];
  };
  round_two_outputs: { outputs: { identifier: number; sig_share: string }[] };
  final_output: { sig: string };
}

function loadVectors(): Vectors {
  for (const p of [localCopy, vectorsPath]) {
    try {
      return JSON.parse(readFileSync(p, "utf8")) as Vectors;
    } catch {
      /* try the next location */
    }
  }
  throw new Error("RFC 9591 vectors not found");
}

describe.each(FROST_BACKENDS)("RFC 9591 FROST(Ed25519, SHA-512) vectors, %s backend", (backend) => {
  const suite = frostSuite(backend);
  const v = loadVectors();
  const id = (n: number) => suite.Identifier.fromNumber(n);
  const shares = new Map(
    v.inputs.participant_shares.map((s) => [s.identifier, hexToBytes(s.participant_share)]),
  );
  const pub: FrostPublic = {
    signers: { min: Number(v.config.MIN_PARTICIPANTS), max: Number(v.config.MAX_PARTICIPANTS) },
    commitments: [hexToBytes(v.inputs.group_public_key)],
    verifyingShares: Object.fromEntries(
      [...shares].map(([n, s]) => [
        id(n),
        new Uint8Array(ed25519.Point.BASE.multiply(suite.utils.Fn.fromBytes(s)).toBytes()),
      ]),
    ),
  };
  const msg = hexToBytes(v.inputs.message);

  it("names the suite the vectors are for", () => {
    expect(v.config.name).toBe("FROST(Ed25519, SHA-512)");
  });

  it("reproduces nonces, commitments, signature shares and the final signature", () => {
    const round1 = v.round_one_outputs.outputs.map((o) => {
      const randomness = [hexToBytes(o.hiding_nonce_randomness), hexToBytes(o.binding_nonce_randomness)];
      const secret = { identifier: id(o.identifier), signingShare: shares.get(o.identifier)! };
      const out = suite.commit(secret, () => randomness.shift()!);
      expect(bytesToHex(out.nonces.hiding)).toBe(o.hiding_nonce);
      expect(bytesToHex(out.nonces.binding)).toBe(o.binding_nonce);
      expect(bytesToHex(out.commitments.hiding)).toBe(o.hiding_nonce_commitment);
      expect(bytesToHex(out.commitments.binding)).toBe(o.binding_nonce_commitment);
      return { n: o.identifier, secret, ...out };
    });
    const commitmentList = round1.map((r) => r.commitments);
    const sigShares: Record<string, Uint8Array> = {};
    for (const r of round1) {
      const share = signShare(r.secret, pub, r.nonces, commitmentList, msg, suite);
      const expected = v.round_two_outputs.outputs.find((o) => o.identifier === r.n)!;
      expect(bytesToHex(share)).toBe(expected.sig_share);
      expect(verifySignatureShare(pub, commitmentList, msg, r.secret.identifier, share, suite)).toBe(true);
      sigShares[r.secret.identifier] = share;
      // signShare consumed the nonce object: docs/architecture.md §3.6.
      expect(r.nonces.hiding.every((b) => b === 0)).toBe(true);
    }
    const sig = aggregateSignature(pub, commitmentList, msg, sigShares, suite);
    expect(bytesToHex(sig)).toBe(v.final_output.sig);
    expect(ed25519.verify(sig, msg, hexToBytes(v.inputs.group_public_key))).toBe(true);
  });

  it("names the participant whose signature share is wrong", () => {
    const round1 = v.round_one_outputs.outputs.map((o) => {
      const randomness = [hexToBytes(o.hiding_nonce_randomness), hexToBytes(o.binding_nonce_randomness)];
      const secret = { identifier: id(o.identifier), signingShare: shares.get(o.identifier)! };
      return { secret, ...suite.commit(secret, () => randomness.shift()!) };
    });
    const list = round1.map((r) => r.commitments);
    const sigShares = Object.fromEntries(
      round1.map((r) => [r.secret.identifier, signShare(r.secret, pub, r.nonces, list, msg, suite)]),
    );
    const victim = round1[1]!.secret.identifier;
    sigShares[victim] = new Uint8Array(sigShares[victim]!).fill(7, 0, 4);
    expect(() => aggregateSignature(pub, list, msg, sigShares, suite)).toThrow(
      expect.objectContaining({ culprits: [victim] }),
    );
  });
});
