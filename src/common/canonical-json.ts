// Canonical JSON: object keys sorted, `undefined` members dropped, no whitespace. Every digest and
// signature over structured data in tca (ca-config digest, envelopes, journal lines, DKG
// transcripts) hashes this form, so it must not depend on key order or YAML layout.

/** JSON with object keys sorted, so a digest does not depend on key order or source layout. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
