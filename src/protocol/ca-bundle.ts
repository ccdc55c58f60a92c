// A file of PEM CA certificates a client trusts for the coordinator's TLS certificate (docs/tls.md):
// `--ca-file FILE` or `$TCA_CA_FILE`. Read and checked before anything is sent, so a path that is
// wrong, unreadable or not PEM certificates is refused naming the file, and never quietly replaced
// by Node's built-in roots.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * The PEM CERTIFICATE blocks of `text` (RFC 7468), each checked to parse as X.509, joined as one
 * string (what Node's `tls` `ca` option takes). `where` names the source in errors.
 */
export function parseCaBundle(text: string, where: string): string {
  const blocks = [...text.matchAll(BLOCK)];
  const certs = blocks.filter((b) => b[1] === "CERTIFICATE").map((b) => b[0]);
  if (certs.length === 0)
    throw new ConfigError(
      "CONFIG_INVALID",
      `${where} holds no PEM certificate (-----BEGIN CERTIFICATE-----)${
        blocks.length > 0 ? `, only ${[...new Set(blocks.map((b) => b[1]))].join(", ")}` : ""
      }`,
    );
  certs.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new ConfigError(
        "CONFIG_INVALID",
        `${where}: certificate ${i + 1} of ${certs.length} is not a valid X.509 certificate (${(e as Error).message})`,
      );
    }
  });
  return `${certs.join("\n")}\n`;
}

/** Reads a CA file; `what` says where its name came from (`--ca-file`, `$TCA_CA_FILE`). */
export function readCaFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "ENOENT" ? "CONFIG_MISSING" : "CONFIG_INVALID",
      `${what}: cannot read ${path}: ${code === "ENOENT" ? "no such file" : (code ?? (e as Error).message)}`,
    );
  }
  return parseCaBundle(text, `${what}: ${path}`);
}

/** `$TCA_CA_FILE`, read and checked; undefined when it is not set. */
export function caFileFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = env.TCA_CA_FILE?.trim();
  return path ? readCaFile(path, "$TCA_CA_FILE") : undefined;
}
