// The repository stands alone: comments and docs cite RFCs and the files under docs/
// (docs/architecture.md, docs/security-model.md, …), never a design document or an issue
// tracker that is not part of the repository.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const SCANNED = ["src", "docs"];

/** What an outside citation looks like: "DESIGN §3.2", "DESIGN.md", "issue 8", "issues 3", "issue #4". */
const OUTSIDE = /\bDESIGN(?:\.md)?\s*§|\bDESIGN\.md\b|\bissues? #?\d+/i;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|md)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function citations(): string[] {
  const found: string[] = [];
  for (const top of SCANNED)
    for (const file of files(join(ROOT, top)))
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (OUTSIDE.test(line)) found.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
        });
  return found;
}

describe("citations stay inside the repository", () => {
  it("recognises the forms it forbids, and not ordinary prose", () => {
    for (const bad of ["(DESIGN §3.2)", "see DESIGN.md", "(issue 8, item 8c)", "Issue 10:", "issue #4"])
      expect(OUTSIDE.test(bad), bad).toBe(true);
    for (const ok of [
      "docs/architecture.md §3.2",
      "RFC 5280 §4.1.2.2",
      "the issuer's name",
      "issued 3 s ago",
    ])
      expect(OUTSIDE.test(ok), ok).toBe(false);
  });

  it("no file under src/ or docs/ cites DESIGN § or an issue number", () => {
    expect(citations()).toEqual([]);
  });
});
