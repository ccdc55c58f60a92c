// In-process per-operation rows that do not depend on the threshold backend (kept from the first
// bench/run.ts): parsing a CSR, building a leaf TBSCertificate, and the single-key sign + assemble +
// verify that the floor adds on top of them. Times are wall-clock on one core.
import "reflect-metadata";
import { generateKeyPairSync, sign } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { LoadedConfig } from "../../src/config/load.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { buildLeafTbs } from "../../src/x509/leaf.ts";
import { buildRootTbs } from "../../src/x509/root.ts";
import { assembleCertificate, verifyCertificateSignature } from "../../src/x509/assemble.ts";
import { randomSerial } from "../../src/x509/serial.ts";
import { makeCsr } from "./csr.ts";

export interface OpRow {
  operation: string;
  iterations: number;
  msPerOp: number;
  opsPerSecond: number;
}

function time(operation: string, iterations: number, fn: () => void): OpRow {
  for (let i = 0; i < Math.min(20, iterations); i++) fn(); // warm up the JIT
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const ms = (performance.now() - start) / iterations;
  return { operation, iterations, msPerOp: Number(ms.toFixed(4)), opsPerSecond: Math.round(1000 / ms) };
}

export function x509Rows(loaded: LoadedConfig, quick: boolean): OpRow[] {
  const k = quick ? 0.2 : 1;
  const config = loaded.config;
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const caRaw = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url"));
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const rootTbs = buildRootTbs({
    subject: config.ca.subject,
    caPublicKey: caRaw,
    serial: randomSerial(),
    notBefore: now,
    notAfter: new Date(now.getTime() + 365 * 86_400_000),
  });
  const caDer = assembleCertificate(rootTbs, new Uint8Array(sign(null, rootTbs, privateKey)));
  const csrPem = makeCsr("svc-op.bench.internal");
  const csr = parseCsr(csrPem);
  const leaf = () =>
    buildLeafTbs({
      csr,
      profile: config.profiles.server!,
      caCertDer: caDer,
      serial: randomSerial(),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      publicUrl: config.ca.publicUrl,
    });
  const tbs = leaf();
  const cert = assembleCertificate(tbs, new Uint8Array(sign(null, tbs, privateKey)));
  return [
    time("make a P-256 CSR (bench load generator, not the CA)", Math.round(500 * k), () =>
      makeCsr("x.bench.internal"),
    ),
    time("parse + verify a P-256 CSR (parseCsr)", Math.round(1000 * k), () => parseCsr(csrPem)),
    time("build a leaf TBSCertificate (buildLeafTbs)", Math.round(3000 * k), leaf),
    time("single-key Ed25519 sign of the TBS (node:crypto; floor only)", Math.round(3000 * k), () =>
      sign(null, tbs, privateKey),
    ),
    time("assemble + verify a certificate (node:crypto)", Math.round(3000 * k), () =>
      verifyCertificateSignature(assembleCertificate(tbs, cert.subarray(cert.length - 64)), caRaw),
    ),
  ];
}
