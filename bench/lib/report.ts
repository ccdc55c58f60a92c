// Markdown tables for the bench output.

export type Cell = string | number | undefined | null;

export function fmt(v: Cell, digits = 1): string {
  if (v === undefined || v === null || (typeof v === "number" && !Number.isFinite(v))) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return v;
}

export function table(headers: string[], rows: Cell[][], digits = 1): string {
  const cells = rows.map((r) => r.map((c) => fmt(c, digits).replace(/\|/g, "\\|")));
  const widths = headers.map((h, i) => Math.max(h.length, 3, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || r[i] == null),
  );
  const rule = `|${widths.map((w, i) => (numeric[i] ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")}|`;
  return [line(headers), rule, ...cells.map(line)].join("\n") + "\n";
}

/** A table from records of unknown shape (columns = union of keys, first-seen order). */
export function recordsTable(records: readonly Record<string, unknown>[]): string {
  const headers: string[] = [];
  for (const r of records) for (const k of Object.keys(r)) if (!headers.includes(k)) headers.push(k);
  return table(
    headers,
    records.map((r) =>
      headers.map((h) => {
        const v = r[h];
        return typeof v === "number" || typeof v === "string" || v == null ? v : JSON.stringify(v);
      }),
    ),
    3,
  );
}
