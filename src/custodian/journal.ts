// The custodian's own signed log (DESIGN §2): every approval it gave and every TBS it signed, one
// JSON line each, hash-chained and signed with its identity key. It is what lets a custodian refuse
// to sign a serial twice and refuse to sign anything it did not approve, even when the coordinator
// says otherwise, and what an auditor reads.
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { createHash } from "node:crypto";
import { signEd25519, verifyEd25519 } from "../common/ed25519.ts";
import { z } from "zod";
import { canonicalJson } from "../config/load.ts";
import { CustodianError } from "./errors.ts";

const EntrySchema = z
  .object({
    seq: z.number().int().min(0),
    prev: z.string().regex(/^[0-9a-f]{64}$/),
    at: z.string(),
    kind: z.enum(["approval", "signature", "crl"]),
    requestId: z.string(),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    serial: z.string().optional(),
    jobId: z.string().optional(),
    crlNumber: z.string().optional(),
    serials: z.array(z.string()).optional(),
    attempt: z.number().int().optional(),
    decision: z.enum(["approve", "reject"]).optional(),
    expiresAt: z.string().optional(),
    sig: z.string(),
  })
  .strict();
export type JournalEntry = z.infer<typeof EntrySchema>;
export type NewEntry = Omit<JournalEntry, "seq" | "prev" | "at" | "sig">;

const MAX_ATTEMPTS_SIGNED = 8;
const GENESIS = "0".repeat(64);
const lineHash = (line: string) => createHash("sha256").update(line).digest("hex");

export class Journal {
  #entries: JournalEntry[] = [];
  #lastHash = GENESIS;

  #readBytes = 0;

  constructor(
    private readonly path: string,
    private readonly publicKey: Uint8Array,
  ) {
    this.refresh();
  }

  /**
   * Re-reads lines another process (the CLI beside an agent) appended since the last read, checking
   * the hash chain and each signature; a broken journal stops this custodian from signing.
   */
  refresh(): void {
    if (!existsSync(this.path) || statSync(this.path).size === this.#readBytes) return;
    const text = readFileSync(this.path, "utf8");
    const lines = text.split("\n").filter(Boolean);
    for (let i = this.#entries.length; i < lines.length; i++) {
      const line = lines[i]!;
      const parsed = EntrySchema.safeParse(JSON.parse(line));
      if (!parsed.success)
        throw new CustodianError("REFUSED", `journal ${this.path} line ${i + 1} is malformed`);
      const e = parsed.data;
      const { sig, ...unsigned } = e;
      if (
        e.seq !== i ||
        e.prev !== this.#lastHash ||
        !verifyEd25519(Buffer.from(sig, "base64url"), Buffer.from(canonicalJson(unsigned)), this.publicKey)
      ) {
        throw new CustodianError(
          "REFUSED",
          `journal ${this.path} is broken at line ${i + 1}: refusing to sign until it is restored`,
        );
      }
      this.#add(e);
      this.#lastHash = lineHash(line);
    }
    this.#readBytes = Buffer.byteLength(text);
  }

  /** Appends under a lock file, so two processes of one custodian never fork the chain. */
  private locked<T>(fn: () => T): T {
    const lock = `${this.path}.lock`;
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        closeSync(openSync(lock, "wx", 0o600));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        // A lock older than 10 s belongs to a process that died mid-append.
        const held = statSync(lock, { throwIfNoEntry: false });
        if (!held) continue; // released between our attempt and this look: try again at once
        if (Date.now() - held.mtimeMs > 10_000) unlinkSync(lock);
        if (Date.now() > deadline)
          throw new CustodianError("REFUSED", `journal ${this.path} is locked by another process`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
    try {
      return fn();
    } finally {
      unlinkSync(lock);
    }
  }

  append(signingSecret: Uint8Array, e: NewEntry): JournalEntry {
    return this.appendMany(signingSecret, [e])[0]!;
  }

  /** Appends several entries under one lock and one write (a batch of approvals or shares). */
  appendMany(signingSecret: Uint8Array, list: readonly NewEntry[]): JournalEntry[] {
    if (list.length === 0) return [];
    return this.locked(() => {
      this.refresh();
      const out: JournalEntry[] = [];
      const lines: string[] = [];
      let seq = this.#entries.length;
      let prev = this.#lastHash;
      for (const e of list) {
        const unsigned = { ...e, seq: seq++, prev, at: new Date().toISOString() };
        const sig = Buffer.from(signEd25519(signingSecret, Buffer.from(canonicalJson(unsigned)))).toString(
          "base64url",
        );
        const entry = EntrySchema.parse({ ...unsigned, sig });
        const line = JSON.stringify(entry);
        prev = lineHash(line);
        out.push(entry);
        lines.push(line);
      }
      const text = lines.map((l) => l + "\n").join("");
      appendFileSync(this.path, text, { mode: 0o600 });
      for (const e of out) this.#add(e);
      this.#lastHash = prev;
      this.#readBytes += Buffer.byteLength(text);
      return out;
    });
  }

  /** Entries by what lookups ask for: a journal of many thousand entries is searched in O(1). */
  readonly #approvals = new Map<string, JournalEntry[]>();
  readonly #signatures = new Map<string, JournalEntry[]>();
  readonly #crls = new Map<string, JournalEntry[]>();
  #lastCrl: JournalEntry | undefined;
  #add(e: JournalEntry): void {
    this.#entries.push(e);
    const push = (m: Map<string, JournalEntry[]>, k: string) => {
      const l = m.get(k);
      if (l) l.push(e);
      else m.set(k, [e]);
    };
    if (e.kind === "approval") push(this.#approvals, e.requestId);
    else if (e.kind === "signature") push(this.#signatures, e.serial ?? "");
    else if (e.kind === "crl") {
      push(this.#crls, e.crlNumber ?? "0");
      if (!this.#lastCrl || BigInt(e.crlNumber ?? "0") > BigInt(this.#lastCrl.crlNumber ?? "0"))
        this.#lastCrl = e;
    }
  }

  /** This custodian's unexpired approval of exactly this TBS, if any. */
  approvalFor(requestId: string, tbsSha256: string, now = Date.now()): JournalEntry | undefined {
    this.refresh();
    return (this.#approvals.get(requestId) ?? []).find(
      (e) => e.decision === "approve" && e.tbsSha256 === tbsSha256 && Date.parse(e.expiresAt ?? "") > now,
    );
  }

  decisionOn(requestId: string): JournalEntry | undefined {
    this.refresh();
    return this.#approvals.get(requestId)?.[0];
  }

  /** Whether this custodian has signed a certificate with this serial (in any job). */
  hasSignedSerial(serial: string): boolean {
    this.refresh();
    return (this.#signatures.get(serial)?.length ?? 0) > 0;
  }

  /**
   * Why signing this serial now would be wrong, if it would. A serial is signed for one TBS in one
   * signing job only; a later attempt of that same job (the session re-formed after a timeout or a
   * bad share elsewhere) signs the same bytes again with fresh nonces, which is safe, up to a cap.
   */
  serialConflict(serial: string, tbsSha256: string, jobId: string): string | undefined {
    this.refresh();
    const prior = this.#signatures.get(serial) ?? [];
    if (prior.some((e) => e.tbsSha256 !== tbsSha256 || e.jobId !== jobId))
      return `I have already signed serial ${serial} for another TBS or signing job`;
    if (prior.length >= MAX_ATTEMPTS_SIGNED)
      return `I have already signed ${prior.length} attempts of this job; refusing more`;
    return undefined;
  }

  /** The highest-numbered CRL this custodian has signed, with its revoked serials. */
  lastCrl(): { number: bigint; serials: string[]; jobId?: string; tbsSha256: string } | undefined {
    this.refresh();
    const best = this.#lastCrl;
    return best
      ? {
          number: BigInt(best.crlNumber ?? "0"),
          serials: best.serials ?? [],
          tbsSha256: best.tbsSha256,
          ...(best.jobId ? { jobId: best.jobId } : {}),
        }
      : undefined;
  }

  /** Signing the same CRL number again is allowed only for the same bytes in the same job (a re-formed session). */
  crlConflict(crlNumber: bigint, tbsSha256: string, jobId: string): string | undefined {
    this.refresh();
    const prior = this.#crls.get(crlNumber.toString()) ?? [];
    if (prior.some((e) => e.tbsSha256 !== tbsSha256 || e.jobId !== jobId))
      return `I have already signed CRL number ${crlNumber} with other contents`;
    return undefined;
  }

  approvedRequestIds(): string[] {
    this.refresh();
    return this.#entries
      .filter((e) => e.kind === "approval" && e.decision === "approve")
      .map((e) => e.requestId);
  }
}
