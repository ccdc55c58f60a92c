// The custodian's own signed log (DESIGN §2): every approval it gave and every TBS it signed, one
// JSON line each, hash-chained and signed with its identity key. It is what lets a custodian refuse
// to sign a serial twice and refuse to sign anything it did not approve, even when the coordinator
// says otherwise, and what an auditor reads.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { z } from "zod";
import { canonicalJson } from "../config/load.ts";
import { CustodianError } from "./errors.ts";

const EntrySchema = z
  .object({
    seq: z.number().int().min(0),
    prev: z.string().regex(/^[0-9a-f]{64}$/),
    at: z.string(),
    kind: z.enum(["approval", "signature"]),
    requestId: z.string(),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    serial: z.string().optional(),
    jobId: z.string().optional(),
    attempt: z.number().int().optional(),
    decision: z.enum(["approve", "reject"]).optional(),
    expiresAt: z.string().optional(),
    sig: z.string(),
  })
  .strict();
export type JournalEntry = z.infer<typeof EntrySchema>;

const MAX_ATTEMPTS_SIGNED = 8;
const GENESIS = "0".repeat(64);
const lineHash = (line: string) => createHash("sha256").update(line).digest("hex");

export class Journal {
  #entries: JournalEntry[] = [];
  #lastHash = GENESIS;

  constructor(
    private readonly path: string,
    private readonly publicKey: Uint8Array,
  ) {
    if (!existsSync(path)) return;
    for (const [i, line] of readFileSync(path, "utf8").split("\n").filter(Boolean).entries()) {
      const parsed = EntrySchema.safeParse(JSON.parse(line));
      if (!parsed.success) throw new CustodianError("REFUSED", `journal ${path} line ${i + 1} is malformed`);
      const e = parsed.data;
      const { sig, ...unsigned } = e;
      if (
        e.seq !== i ||
        e.prev !== this.#lastHash ||
        !ed25519.verify(Buffer.from(sig, "base64url"), Buffer.from(canonicalJson(unsigned)), publicKey)
      ) {
        throw new CustodianError(
          "REFUSED",
          `journal ${path} is broken at line ${i + 1}: refusing to sign until it is restored`,
        );
      }
      this.#entries.push(e);
      this.#lastHash = lineHash(line);
    }
  }

  append(signingSecret: Uint8Array, e: Omit<JournalEntry, "seq" | "prev" | "at" | "sig">): JournalEntry {
    const unsigned = { ...e, seq: this.#entries.length, prev: this.#lastHash, at: new Date().toISOString() };
    const sig = Buffer.from(ed25519.sign(Buffer.from(canonicalJson(unsigned)), signingSecret)).toString(
      "base64url",
    );
    const entry = EntrySchema.parse({ ...unsigned, sig });
    const line = JSON.stringify(entry);
    appendFileSync(this.path, line + "\n", { mode: 0o600 });
    this.#entries.push(entry);
    this.#lastHash = lineHash(line);
    return entry;
  }

  /** This custodian's unexpired approval of exactly this TBS, if any. */
  approvalFor(requestId: string, tbsSha256: string, now = Date.now()): JournalEntry | undefined {
    return this.#entries.find(
      (e) =>
        e.kind === "approval" &&
        e.decision === "approve" &&
        e.requestId === requestId &&
        e.tbsSha256 === tbsSha256 &&
        Date.parse(e.expiresAt ?? "") > now,
    );
  }

  decisionOn(requestId: string): JournalEntry | undefined {
    return this.#entries.find((e) => e.kind === "approval" && e.requestId === requestId);
  }

  /**
   * Why signing this serial now would be wrong, if it would. A serial is signed for one TBS in one
   * signing job only; a later attempt of that same job (the session re-formed after a timeout or a
   * bad share elsewhere) signs the same bytes again with fresh nonces, which is safe, up to a cap.
   */
  serialConflict(serial: string, tbsSha256: string, jobId: string): string | undefined {
    const prior = this.#entries.filter((e) => e.kind === "signature" && e.serial === serial);
    if (prior.some((e) => e.tbsSha256 !== tbsSha256 || e.jobId !== jobId))
      return `I have already signed serial ${serial} for another TBS or signing job`;
    if (prior.length >= MAX_ATTEMPTS_SIGNED)
      return `I have already signed ${prior.length} attempts of this job; refusing more`;
    return undefined;
  }

  approvedRequestIds(): string[] {
    return this.#entries
      .filter((e) => e.kind === "approval" && e.decision === "approve")
      .map((e) => e.requestId);
  }
}
