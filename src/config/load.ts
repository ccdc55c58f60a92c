import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { CaConfigSchema, type CaConfig } from "./schema.ts";
import { ConfigError } from "./errors.ts";
import { placeholderProblem } from "./placeholders.ts";
import { canonicalJson } from "../common/canonical-json.ts";

/** A loaded ca-config and the digest every node compares (docs/architecture.md §3.3: approvals sign it). */
export interface LoadedConfig {
  config: CaConfig;
  /** SHA-256 over the canonical JSON of the parsed config, hex. */
  digest: string;
}

export function parseCaConfig(text: string, source = "ca-config"): LoadedConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError("CONFIG_SYNTAX", `${source}: not valid YAML: ${(e as Error).message}`);
  }
  const unfilled = placeholderProblem(raw, source);
  if (unfilled !== undefined) throw new ConfigError("CONFIG_INVALID", unfilled);
  const parsed = CaConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new ConfigError("CONFIG_INVALID", `${source}: ${first}`);
  }
  return { config: parsed.data, digest: configDigest(parsed.data) };
}

export function loadCaConfig(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(
      "CONFIG_MISSING",
      `cannot read ca-config at ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  return parseCaConfig(text, path);
}

/** Kept here for existing importers; the function lives in the bottom layer. */
export { canonicalJson };

export function configDigest(config: CaConfig): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex");
}
