// Per-operation FROST timings (docs/benchmarks.md, section (c)): commit, signShare, verifyShare, aggregate
// (which verifies the result) and one whole certificate session, for t = 2, 3, 5, 7 (n = t + 2) on both
// group backends, plus an all-in-one-process DKG for n = 5. Wired into `npm run bench` by
// bench/run.ts; also runs alone: `node --import tsx bench/threshold.ts [--quick]`.
import {
  identifierForName,
  frostSuite,
  nativeAvailable,
  FROST_BACKENDS,
  type FrostBackend,
} from "../src/threshold/suite.ts";
import type { FrostPublic, FrostSecret, NonceCommitments } from "../src/threshold/suite.ts";
import { aggregateSignature, signShare, verifySignatureShare } from "../src/threshold/sign.ts";
import { dkgPart1, dkgPart2, dkgPart3, shareMatchesCommitment } from "../src/threshold/dkg.ts";

export interface Row {
  case: string;
  backend: FrostBackend;
  t: number;
  n: number;
  iterations: number;
  msPerOp: number;
  opsPerSecond: number;
}

const THRESHOLDS = [2, 3, 5, 7];
const DKG_N = 5;
const DKG_T = 3;

/** Runs `fn` until `budgetMs` has passed (at least `min` times) after a short warm-up. */
function time(
  budgetMs: number,
  min: number,
  fn: (i: number) => void,
  warmUp = 3,
): { iterations: number; ms: number } {
  for (let i = 0; i < warmUp; i++) fn(i);
  let iterations = 0;
  const start = performance.now();
  let now = start;
  while (iterations < min || now - start < budgetMs) {
    fn(iterations++);
    now = performance.now();
  }
  return { iterations, ms: (now - start) / iterations };
}

function row(
  c: string,
  backend: FrostBackend,
  t: number,
  n: number,
  r: { iterations: number; ms: number },
): Row {
  return {
    case: c,
    backend,
    t,
    n,
    iterations: r.iterations,
    msPerOp: Number(r.ms.toFixed(4)),
    opsPerSecond: Math.round(1000 / r.ms),
  };
}

/** All n parties of a DKG in one process, including each recipient's per-sender share check. */
function dkgAllInOne(backend: FrostBackend, names: string[], t: number) {
  const frost = frostSuite(backend);
  const ids = names.map((name) => identifierForName(name));
  const p1 = ids.map((id) => dkgPart1(id, t, ids.length, frost));
  const others = (i: number) => p1.filter((_, j) => j !== i).map((p) => p.round1);
  const sent = p1.map((p, i) => dkgPart2(p.state, others(i), frost));
  return ids.map((id, i) => {
    const received: Record<string, Uint8Array> = {};
    for (const [j, from] of ids.entries()) {
      if (j === i) continue;
      const share = sent[j]![id]!;
      if (!shareMatchesCommitment(id, p1[j]!.round1, share, frost)) throw new Error("bad DKG share");
      received[from] = share;
    }
    return dkgPart3(p1[i]!.state, others(i), received, frost);
  });
}

interface Fixture {
  pub: FrostPublic;
  signers: FrostSecret[];
}

function signingRows(backend: FrostBackend, t: number, fx: Fixture, budgetMs: number): Row[] {
  const frost = frostSuite(backend);
  const n = fx.pub.signers.max;
  const msg = new Uint8Array(600).fill(0x30); // about the size of a leaf TBSCertificate
  const { signers, pub } = fx;
  const fixed = signers.map((s) => frost.commit(s));
  const list: NonceCommitments[] = fixed.map((c) => c.commitments);
  const shares: Record<string, Uint8Array> = {};
  signers.forEach((s, i) => (shares[s.identifier] = signShare(s, pub, fixed[i]!.nonces, list, msg, frost)));
  const rows: Row[] = [];

  rows.push(
    row(
      "commit",
      backend,
      t,
      n,
      time(budgetMs, 20, () => frost.commit(signers[0]!)),
    ),
  );

  // Each signShare needs fresh nonces (they are used up): prepare them outside the timed loop.
  const fresh: { nonces: ReturnType<typeof frost.commit>["nonces"]; list: NonceCommitments[] }[] = [];
  const prepared = (i: number) => {
    while (fresh.length <= i) {
      const c = frost.commit(signers[0]!);
      fresh.push({ nonces: c.nonces, list: [c.commitments, ...list.slice(1)] });
    }
    return fresh[i]!;
  };
  let next = 0;
  const probe = time(Math.min(budgetMs, 50), 5, () => {
    const f = prepared(next++);
    signShare(signers[0]!, pub, f.nonces, f.list, msg, frost);
  });
  const k = Math.max(10, Math.ceil(budgetMs / probe.ms));
  for (let i = next; i < next + k + 3; i++) prepared(i);
  const signTimed = time(0, k, () => {
    const f = fresh[next++]!;
    signShare(signers[0]!, pub, f.nonces, f.list, msg, frost);
  });
  rows.push(row("signShare", backend, t, n, signTimed));

  const id0 = signers[0]!.identifier;
  rows.push(
    row(
      "verifyShare",
      backend,
      t,
      n,
      time(budgetMs, 10, () => {
        if (!verifySignatureShare(pub, list, msg, id0, shares[id0]!, frost)) throw new Error("bad share");
      }),
    ),
  );
  rows.push(
    row(
      "aggregate (incl. verify)",
      backend,
      t,
      n,
      time(budgetMs, 10, () => aggregateSignature(pub, list, msg, shares, frost)),
    ),
  );
  rows.push(
    row(
      "session: t commits + t shares + aggregate",
      backend,
      t,
      n,
      time(budgetMs, 5, () => {
        const round1 = signers.map((s) => frost.commit(s));
        const l = round1.map((r) => r.commitments);
        const sh: Record<string, Uint8Array> = {};
        signers.forEach((s, i) => (sh[s.identifier] = signShare(s, pub, round1[i]!.nonces, l, msg, frost)));
        aggregateSignature(pub, l, msg, sh, frost);
      }),
    ),
  );
  return rows;
}

/** The threshold rows of `npm run bench` (≈ 15–25 s on 2 cores; `quick` ≈ 5 s). */
export async function thresholdRows(options: { quick?: boolean } = {}): Promise<Row[]> {
  const budgetMs = options.quick ? 40 : 250;
  const rows: Row[] = [];
  const fixtures = new Map<number, Fixture>();
  // Without sodium-native only the pure-JS rows can be measured.
  const backends: readonly FrostBackend[] = nativeAvailable() ? FROST_BACKENDS : ["noble"];
  for (const t of THRESHOLDS) {
    const n = t + 2;
    // The key is backend-independent: make it once, with the native DKG when it is available.
    const keys = dkgAllInOne(
      backends.includes("native") ? "native" : "noble",
      Array.from({ length: n }, (_, i) => `bench-${t}-${i}`),
      t,
    );
    fixtures.set(t, { pub: keys[0]!.public, signers: keys.slice(0, t).map((k) => k.secret) });
  }
  for (const backend of backends) {
    for (const t of THRESHOLDS) {
      rows.push(...signingRows(backend, t, fixtures.get(t)!, budgetMs));
      await new Promise((r) => setImmediate(r));
    }
    const names = Array.from({ length: DKG_N }, (_, i) => `dkg-${i}`);
    rows.push(
      row(
        `DKG n=${DKG_N}, all parties in one process (incl. per-sender share checks)`,
        backend,
        DKG_T,
        DKG_N,
        time(
          options.quick ? 0 : budgetMs * 4,
          options.quick ? 1 : 3,
          () => dkgAllInOne(backend, names, DKG_T),
          1,
        ),
      ),
    );
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await thresholdRows({ quick: process.argv.includes("--quick") });
  console.log("| case | backend | t | n | µs/op | ops/s | iterations |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows)
    console.log(
      `| ${r.case} | ${r.backend} | ${r.t} | ${r.n} | ${(r.msPerOp * 1000).toFixed(0)} | ${r.opsPerSecond} | ${r.iterations} |`,
    );
}
