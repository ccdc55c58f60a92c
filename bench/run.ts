// `npm run bench`: what one certificate costs in the parts that scale with volume — the threshold
// signature (CPU per certificate, by t-of-n), building the TBS, and parsing a CSR. Speed targets are
// measured here, never asserted in tests. Prints a table; `--json` for machine-readable output.
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { identifierForName } from "../src/threshold/suite.ts";
import { dkgPart1, dkgPart2, dkgPart3 } from "../src/threshold/dkg.ts";
import { NoncePool, aggregateSignature, signShare } from "../src/threshold/sign.ts";
import { commitmentFromWire } from "../src/threshold/encoding.ts";
import { parseCsr } from "../src/x509/csr.ts";
import { buildLeafTbs } from "../src/x509/leaf.ts";
import { buildRootTbs } from "../src/x509/root.ts";
import { assembleCertificate } from "../src/x509/assemble.ts";
import { randomSerial } from "../src/x509/serial.ts";
import { loadCaConfig } from "../src/config/load.ts";

interface Row {
  case: string;
  iterations: number;
  msPerOp: number;
  opsPerSecond: number;
}

function time(name: string, iterations: number, fn: () => void): Row {
  for (let i = 0; i < Math.min(5, iterations); i++) fn(); // warm up the JIT
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const ms = (performance.now() - start) / iterations;
  return { case: name, iterations, msPerOp: Number(ms.toFixed(3)), opsPerSecond: Math.round(1000 / ms) };
}

function dkg(n: number, t: number) {
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  const parts = names.map((name) => ({ id: identifierForName(name), ...dkgPart1(identifierForName(name), t, n) }));
  const sent = new Map(parts.map((p) => [p.id, dkgPart2(p.state, parts.filter((o) => o !== p).map((o) => o.round1))]));
  return parts.map((p) => {
    const others = parts.filter((o) => o !== p);
    return dkgPart3(p.state, others.map((o) => o.round1), Object.fromEntries(others.map((o) => [o.id, sent.get(o.id)![p.id]!])));
  });
}

/** One certificate's FROST session among t signers: commit, sign shares, aggregate and verify. */
function thresholdSign(keys: ReturnType<typeof dkg>, t: number, message: Uint8Array): void {
  const signers = keys.slice(0, t);
  const pools = signers.map((k) => new NoncePool(k.secret));
  const wires = pools.map((p) => p.commit());
  const list = wires.map(commitmentFromWire);
  const shares = Object.fromEntries(signers.map((k, i) => [k.secret.identifier, signShare(k.secret, k.public, pools[i]!.take(wires[i]!)!, list, message)]));
  aggregateSignature(signers[0]!.public, list, message, shares);
}

const rows: Row[] = [];
const message = randomBytes(450); // a typical leaf TBSCertificate is 400-500 bytes
for (const [t, n] of [[2, 3], [3, 5], [5, 9]] as const) {
  const keys = dkg(n, t);
  rows.push(time(`FROST sign ${t}-of-${n} (one certificate, all signers in one process)`, t === 5 ? 20 : 40, () => thresholdSign(keys, t, message)));
}
const dkgStart = performance.now();
dkg(5, 3);
rows.push({ case: "DKG 3-of-5 (all parties in one process)", iterations: 1, msPerOp: Number((performance.now() - dkgStart).toFixed(1)), opsPerSecond: 0 });

const dir = mkdtempSync(join(tmpdir(), "tca-bench-"));
try {
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k"), "-out", join(dir, "csr"), "-subj", "/CN=bench.example.internal", "-addext", "subjectAltName=DNS:bench.example.internal"], { stdio: "pipe" });
  const csrPem = readFileSync(join(dir, "csr"), "utf8");
  const config = loadCaConfig(new URL("../ca-config/ca.yaml", import.meta.url).pathname).config;
  const caKey = randomBytes(32);
  const now = new Date();
  const later = new Date(now.getTime() + 86_400_000 * 365);
  const rootTbs = buildRootTbs({ subject: config.ca.subject, caPublicKey: caKey, serial: randomSerial(), notBefore: now, notAfter: later });
  const caCert = assembleCertificate(rootTbs, new Uint8Array(64));
  const csr = parseCsr(csrPem);
  rows.push(time("parse + verify a P-256 CSR", 500, () => parseCsr(csrPem)));
  rows.push(
    time("build a leaf TBSCertificate", 2000, () =>
      buildLeafTbs({ csr, profile: config.profiles.server!, caCertDer: caCert, serial: randomSerial(), notBefore: now, notAfter: new Date(now.getTime() + 86_400_000), publicUrl: config.ca.publicUrl }),
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const mem = process.memoryUsage();
if (process.argv.includes("--json")) {
  process.stdout.write(JSON.stringify({ rows, rssMiB: Math.round(mem.rss / 2 ** 20), heapUsedMiB: Math.round(mem.heapUsed / 2 ** 20) }, null, 2) + "\n");
} else {
  const w = Math.max(...rows.map((r) => r.case.length));
  process.stdout.write(`${"case".padEnd(w)}  ${"ms/op".padStart(9)}  ${"ops/s".padStart(7)}\n`);
  for (const r of rows) process.stdout.write(`${r.case.padEnd(w)}  ${r.msPerOp.toFixed(3).padStart(9)}  ${(r.opsPerSecond || "-").toString().padStart(7)}\n`);
  process.stdout.write(`\nrss ${Math.round(mem.rss / 2 ** 20)} MiB, heap used ${Math.round(mem.heapUsed / 2 ** 20)} MiB (node ${process.version})\n`);
}
