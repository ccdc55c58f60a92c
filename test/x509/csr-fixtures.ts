// Generates keys and CSRs with the openssl CLI, as requesters do.
import { readFileSync } from "node:fs";
import { openssl, type TempDir } from "./helpers.ts";

export const KEYGEN: Record<string, string[]> = {
  "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  "rsa-1024": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
  "rsa-pss-key": ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
  p256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
  p384: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
  p521: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
  secp256k1: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
  ed25519: ["-algorithm", "ED25519"],
  ed448: ["-algorithm", "ED448"],
};

export interface CsrOptions {
  subject?: string;
  san?: string;
  reqArgs?: string[];
}

/** Makes (or reuses) key `kind` and returns the PEM of a fresh CSR. */
export function makeCsr(dir: TempDir, kind: string, name: string, o: CsrOptions = {}): string {
  const key = dir.file(`${kind}.key`);
  try {
    readFileSync(key);
  } catch {
    openssl(["genpkey", ...KEYGEN[kind]!, "-out", key]);
  }
  const out = dir.file(`${name}.csr`);
  openssl([
    "req",
    "-new",
    "-key",
    key,
    "-out",
    out,
    "-subj",
    o.subject ?? "/CN=a.example/O=Example",
    ...(o.san ? ["-addext", `subjectAltName=${o.san}`] : []),
    ...(o.reqArgs ?? []),
  ]);
  return readFileSync(out, "utf8");
}
