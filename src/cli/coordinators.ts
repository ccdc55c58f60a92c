// `--coordinator`: one or more coordinator URLs (replicas of one CA), repeatable and
// comma-separated, else $TCA_COORDINATOR. The HTTP client fails over between them
// (src/protocol/http-client.ts).
import { BaseUrlError, parseBaseUrls } from "../protocol/http-client.ts";
import { UsageError } from "./output.ts";

export const COORDINATOR_FLAG = "--coordinator <urls>";

/** Commander's parser for a repeatable --coordinator. */
export const collectUrls = (v: string, acc: string[] = []): string[] => [...acc, v];

/**
 * The URLs given by --coordinator, else $TCA_COORDINATOR, else `fallback`; undefined when none is.
 * A URL that is not http(s) is a usage error that names it.
 */
export function coordinatorUrls(
  flag: readonly string[] | undefined,
  fallback?: string,
): string[] | undefined {
  const env = process.env.TCA_COORDINATOR?.trim();
  const [where, value] =
    flag && flag.length > 0
      ? ["--coordinator", flag]
      : env
        ? ["$TCA_COORDINATOR", [env]]
        : fallback
          ? ["the default coordinator", [fallback]]
          : [undefined, undefined];
  if (value === undefined) return undefined;
  try {
    return parseBaseUrls(value);
  } catch (e) {
    if (e instanceof BaseUrlError) throw new UsageError(`${where}: ${e.message}`);
    throw e;
  }
}

/** Like coordinatorUrls, but one is required. */
export function requiredCoordinatorUrls(flag: readonly string[] | undefined): string[] {
  const urls = coordinatorUrls(flag);
  if (!urls) throw new UsageError("a coordinator is needed: --coordinator URL[,URL...] or $TCA_COORDINATOR");
  return urls;
}
