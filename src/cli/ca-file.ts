// `--ca-file FILE` (else `$TCA_CA_FILE`): the PEM CA certificates a requester or admin command
// trusts for the coordinator's TLS certificate instead of Node's built-in roots (docs/tls.md). A
// file that is missing, unreadable or holds no PEM certificate is a usage error naming it.
import { ConfigError } from "../config/errors.ts";
import { caFileFromEnv, readCaFile } from "../protocol/ca-bundle.ts";
import type { TlsOptions } from "../protocol/http-client.ts";
import { UsageError } from "./output.ts";

export const CA_FILE_FLAG = "--ca-file <file>";
export const CA_FILE_HELP =
  "PEM CA certificate(s) the coordinator's TLS certificate must chain to (default: $TCA_CA_FILE, else the system's roots)";

/** The TLS options for `--ca-file` / `$TCA_CA_FILE`; undefined when neither is given. */
export function caFileTls(flag: string | undefined): TlsOptions | undefined {
  try {
    const ca = flag !== undefined ? readCaFile(flag, "--ca-file") : caFileFromEnv();
    return ca ? { ca } : undefined;
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}
