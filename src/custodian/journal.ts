// The custodian's own signed log (docs/journal.md): every approval it gave and every TBS it signed, one
// JSON line each, hash-chained and signed with its identity key. It is what lets a custodian refuse
// to sign a serial twice and refuse to sign anything it did not approve, even when the coordinator
// says otherwise, and what an auditor reads.
//
// Its head (next sequence number and the hash of the last line) is anchored outside the file, in
// the keystore (docs/journal.md): signed with the identity key, under a monotonic counter, written
// and fsynced after the lines it covers and before any approval or share they record leaves. A
// journal that is missing, shorter than its anchor, rewritten, shrinks while running, or ends in a
// torn line stops this custodian from approving and signing, with a message naming the file, the
// line and what is missing.
import { storedSerial } from "../x509/serial.ts";
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { createHash } from "node:crypto";
import { signEd25519, verifyEd25519 } from "../common/ed25519.ts";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { CustodianError } from "./errors.ts";

const EntrySchema = z
  .object({
    seq: z.number().int().min(0),
    prev: z.string().regex(/^[0-9a-f]{64}$/),
    at: z.string(),
    kind: z.enum(["approval", "signature", "crl", "checkpoint", "recovery"]),
    requestId: z.string(),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    serial: z.string().optional(),
    jobId: z.string().optional(),
    crlNumber: z.string().optional(),
    serials: z.array(z.string()).optional(),
    /** checkpoint: the audit chain's entry it vouches for, and that entry's hash (docs/audit.md). */
    auditSeq: z.number().int().min(1).optional(),
    auditHead: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    attempt: z.number().int().optional(),
    decision: z.enum(["approve", "reject"]).optional(),
    expiresAt: z.string().optional(),
    /** recovery: how many anchored entries were lost, and what the new segment was rebuilt from. */
    lost: z.number().int().min(0).optional(),
    note: z.string().optional(),
    sig: z.string(),
  })
  .strict();
export type JournalEntry = z.infer<typeof EntrySchema>;
export type NewEntry = Omit<JournalEntry, "seq" | "prev" | "at" | "sig">;

/** What the journal's head is anchored as (in the keystore, next to the encrypted blob). */
export const ANCHOR_DOMAIN = "tca/journal-anchor/v1";
const AnchorSchema = z
  .object({
    domain: z.literal(ANCHOR_DOMAIN),
    /** Entries written: the sequence number the next entry gets. */
    seq: z.number().int().min(0),
    /** SHA-256 of the last line (of entry seq − 1), or 64 zeros for an empty journal. */
    head: z.string().regex(/^[0-9a-f]{64}$/),
    /** Goes up by one with every anchor written, never down. */
    counter: z.number().int().min(0),
    at: z.string(),
    sig: z.string(),
  })
  .strict();
export type JournalAnchor = z.infer<typeof AnchorSchema>;

/** Where the anchor is kept (the keystore file); `label` names it in messages. */
export interface AnchorStore {
  readonly label: string;
  /** The stored anchor (unchecked), or undefined when there is none. */
  read(): unknown;
  /** Replaces it atomically and durably (temp file, fsync, rename, fsync of the directory). */
  write(anchor: JournalAnchor): void;
  /** Cheap identity of the stored state (mtime, size, inode), to re-read only when it changed. */
  version(): string;
}

export interface JournalOptions {
  anchor?: AnchorStore;
  /** The keystore says an anchor was written: its absence is a rollback, not an old keystore. */
  anchorRequired?: boolean;
}

const MAX_ATTEMPTS_SIGNED = 8;
export const GENESIS = "0".repeat(64);
const lineHash = (line: string) => createHash("sha256").update(line).digest("hex");
const HINT =
  "run `tca custodian journal verify` for details and `tca custodian journal recover` (docs/journal.md)";

export function signAnchor(
  signingSecret: Uint8Array,
  a: { seq: number; head: string; counter: number },
): JournalAnchor {
  const unsigned = {
    domain: ANCHOR_DOMAIN,
    seq: a.seq,
    head: a.head,
    counter: a.counter,
    at: new Date().toISOString(),
  };
  const sig = Buffer.from(signEd25519(signingSecret, Buffer.from(canonicalJson(unsigned)))).toString(
    "base64url",
  );
  return { ...unsigned, sig } as JournalAnchor;
}

/** Why a journal cannot be trusted: a REFUSED error that also says whether dropping a torn tail would fix it. */
export class JournalDamage extends CustodianError {
  constructor(
    message: string,
    /** The torn last line is past the anchored head: it never left, so it may be dropped. */
    readonly tornTail?: { line: number; offset: number },
  ) {
    super("REFUSED", message);
  }
}

export class Journal {
  #entries: JournalEntry[] = [];
  #hashes: string[] = [];
  /** Sequence number of the first entry in the file: 0, or the seq of a recovery entry. */
  #base = 0;
  #firstPrev = GENESIS;
  #lastHash = GENESIS;
  #readBytes = 0;
  #fileSeen = false;
  /** Highest anchor this process has seen or written: the anchor never goes below it. */
  #highAnchor: { seq: number; counter: number } | undefined;
  #anchorVersion: string | undefined;
  /** Once the journal has been found rolled back while running, it stays refused. */
  #broken: CustodianError | undefined;

  constructor(
    private readonly path: string,
    private readonly publicKey: Uint8Array,
    private readonly opts: JournalOptions = {},
  ) {
    try {
      this.#load(true);
    } catch (e) {
      // Another process of this custodian may be mid-append: look again while holding the lock.
      if (e instanceof JournalDamage && e.tornTail && existsSync(`${path}.lock`))
        this.locked(() => this.#load(true));
      else throw e;
    }
  }

  /** The sequence number the next entry gets (entries written, counting any lost before a recovery). */
  get nextSeq(): number {
    return this.#base + this.#entries.length;
  }
  get head(): string {
    return this.#lastHash;
  }
  get entryCount(): number {
    return this.#entries.length;
  }
  get firstSeq(): number {
    return this.#base;
  }

  /** The anchor as stored now, checked (signature) but not compared with the journal. */
  anchor(): JournalAnchor | undefined {
    return this.opts.anchor ? this.#readAnchor() : undefined;
  }

  /**
   * Re-reads lines another process (the CLI beside an agent) appended since the last read, checking
   * the hash chain, each signature and the anchor; a broken journal stops this custodian from signing.
   */
  refresh(): void {
    this.#load(false);
  }

  #load(initial: boolean): void {
    if (this.#broken) throw this.#broken;
    try {
      this.#readFile(initial);
      this.#checkAnchor(initial);
    } catch (e) {
      // Found while running (the file shrank, was rewritten or lost lines): refuse for good. At start
      // the caller sees the error and nothing runs.
      if (!initial && e instanceof CustodianError && !(e instanceof JournalDamage && e.tornTail))
        this.#broken = e;
      throw e;
    }
  }

  #readFile(initial: boolean): void {
    const st = statSync(this.path, { throwIfNoEntry: false });
    if (!st) {
      if (this.#fileSeen || this.#entries.length > 0)
        throw new JournalDamage(
          `journal ${this.path} was deleted while this custodian was running (it held ${this.nextSeq} entries): ` +
            `refusing to approve or sign; ${HINT}`,
        );
      return;
    }
    this.#fileSeen = true;
    if (!initial && st.size === this.#readBytes) return;
    if (st.size < this.#readBytes)
      throw new JournalDamage(
        `journal ${this.path} shrank from ${this.#readBytes} to ${st.size} bytes while this custodian was running ` +
          `(it held ${this.nextSeq} entries, up to line ${this.#entries.length}): truncated or rolled back; ` +
          `refusing to approve or sign; ${HINT}`,
      );
    const text = readFileSync(this.path, "utf8");
    const complete = text.lastIndexOf("\n") + 1;
    const lines = text.slice(0, complete).split("\n");
    lines.pop();
    // The lines already read must be the same ones (a rewrite of the same length or longer).
    const known = this.#entries.length;
    if (known > 0 && (lines.length < known || lineHash(lines[known - 1]!) !== this.#hashes[known - 1]))
      throw new JournalDamage(
        `journal ${this.path} was rewritten while this custodian was running: line ${known} is not the entry it read there; ` +
          `refusing to approve or sign; ${HINT}`,
      );
    for (let i = known; i < lines.length; i++) this.#accept(lines[i]!, i, false);
    if (complete < text.length) {
      // A last line with no newline: a write that did not finish (crash mid-append), or one still in
      // progress in another process (then the next read finds it whole).
      const tail = text.slice(complete);
      if (initial) {
        const line = lines.length + 1;
        let parses = false;
        try {
          JSON.parse(tail);
          parses = true;
        } catch {
          /* torn */
        }
        const anchor = this.opts.anchor ? this.#readAnchor() : undefined;
        const afterHead = !anchor || anchor.seq <= this.nextSeq;
        throw new JournalDamage(
          `journal ${this.path} line ${line} is incomplete (${Buffer.byteLength(tail)} bytes, no newline${parses ? "" : ", not JSON"}): ` +
            `the last write was interrupted. ` +
            (afterHead
              ? `It is past the anchored head (${anchor ? `${anchor.seq} entries` : "no anchor"}), so it never left this custodian: ` +
                `\`tca custodian journal recover --drop-torn-tail\` removes it`
              : `The keystore's anchor says ${anchor!.seq} entries were written, so it did leave: refusing to drop it; ${HINT}`),
          afterHead ? { line, offset: Buffer.byteLength(text.slice(0, complete)) } : undefined,
        );
      }
    }
    this.#readBytes = Buffer.byteLength(text.slice(0, complete));
  }

  #accept(line: string, i: number, mine: boolean): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new JournalDamage(
        `journal ${this.path} line ${i + 1} is not JSON (${(e as Error).message}); ${HINT}`,
      );
    }
    const parsed = EntrySchema.safeParse(json);
    if (!parsed.success) throw new JournalDamage(`journal ${this.path} line ${i + 1} is malformed; ${HINT}`);
    const e = parsed.data;
    if (i === 0 && e.kind === "recovery") {
      // A segment written by `tca custodian journal recover`: it continues the lost chain's numbering.
      this.#base = e.seq;
      this.#firstPrev = e.prev;
      this.#lastHash = e.prev;
    }
    const { sig, ...unsigned } = e;
    if (
      e.seq !== this.#base + i ||
      e.prev !== this.#lastHash ||
      (!mine &&
        !verifyEd25519(Buffer.from(sig, "base64url"), Buffer.from(canonicalJson(unsigned)), this.publicKey))
    ) {
      throw new JournalDamage(
        `journal ${this.path} is broken at line ${i + 1}: refusing to sign until it is restored; ${HINT}`,
      );
    }
    this.#add(e);
    this.#lastHash = lineHash(line);
    this.#hashes.push(this.#lastHash);
  }

  #readAnchor(): JournalAnchor | undefined {
    const store = this.opts.anchor!;
    const raw = store.read();
    if (raw === undefined) return undefined;
    const a = AnchorSchema.safeParse(raw);
    if (!a.success) throw new JournalDamage(`the journal anchor in ${store.label} is malformed; ${HINT}`);
    const { sig, ...unsigned } = a.data;
    if (!verifyEd25519(Buffer.from(sig, "base64url"), Buffer.from(canonicalJson(unsigned)), this.publicKey))
      throw new JournalDamage(
        `the journal anchor in ${store.label} has a bad signature (not this custodian's): refusing; ${HINT}`,
      );
    return a.data;
  }

  /** Compares the anchored head with the journal; remembers the highest anchor seen. */
  #checkAnchor(initial: boolean, retried = false): void {
    const store = this.opts.anchor;
    if (!store) return;
    const version = store.version();
    if (!initial && version === this.#anchorVersion) return;
    const a = this.#readAnchor();
    if (!a) {
      if (this.opts.anchorRequired || this.#highAnchor)
        throw new JournalDamage(
          `${store.label} holds no journal anchor, but this custodian has anchored its journal ${this.path} before: ` +
            `the anchor was removed (or the keystore replaced by an older copy); refusing to approve or sign; ${HINT}`,
        );
      this.#anchorVersion = version;
      return; // a keystore from before anchoring: the first append anchors it
    }
    const high = this.#highAnchor;
    if (high && (a.counter < high.counter || a.seq < high.seq))
      throw new JournalDamage(
        `the journal anchor in ${store.label} went back from ${high.seq} entries (anchor #${high.counter}) to ` +
          `${a.seq} entries (anchor #${a.counter}) while this custodian was running: the keystore and journal were ` +
          `rolled back; refusing to approve or sign; ${HINT}`,
      );
    const have = this.nextSeq;
    if (a.seq > have) {
      // Another process may have appended and anchored since this one read the file: read again once.
      if (!retried && !initial && existsSync(this.path)) {
        this.#readFile(false);
        return this.#checkAnchor(initial, true);
      }
      const lines = this.#entries.length;
      throw new JournalDamage(
        this.#fileSeen
          ? `journal ${this.path} ends at entry ${have} (line ${lines}) but the keystore's anchor says ${a.seq} entries ` +
              `were written: ${a.seq - have} entries are missing (truncated, or rolled back to an older copy); ` +
              `refusing to approve or sign; ${HINT}`
          : `journal ${this.path} is missing but the keystore's anchor says ${a.seq} entries were written: ` +
              `${a.seq} entries are missing (deleted); refusing to approve or sign; ${HINT}`,
      );
    }
    // The anchored head must be the entry at that position (or, for an anchor from just before a
    // recovery, the lost chain's head the recovery continues from).
    const at = a.seq - this.#base;
    const expected = at > 0 ? this.#hashes[at - 1] : at === 0 ? this.#firstPrev : undefined;
    if (expected !== a.head)
      throw new JournalDamage(
        `journal ${this.path} does not contain the anchored entry ${a.seq} (line ${Math.max(at, 0)}): ` +
          `its lines differ from what was anchored in ${store.label} (rewritten or replaced); refusing to approve or sign; ${HINT}`,
      );
    this.#highAnchor = { seq: a.seq, counter: a.counter };
    this.#anchorVersion = store.version();
  }

  /** Writes the anchor for the current head (under the lock, after the lines are durable). */
  #writeAnchor(signingSecret: Uint8Array): void {
    const store = this.opts.anchor;
    if (!store) return;
    const stored = this.#readAnchor();
    const counter = Math.max(stored?.counter ?? -1, this.#highAnchor?.counter ?? -1) + 1;
    store.write(signAnchor(signingSecret, { seq: this.nextSeq, head: this.#lastHash, counter }));
    this.#highAnchor = { seq: this.nextSeq, counter };
    this.#anchorVersion = store.version();
  }

  /**
   * Anchors the current head now, unless it already is: after entries appended with anchor: false
   * (a batch of shares), for a keystore from before anchoring, or after a recovery.
   */
  anchorNow(signingSecret: Uint8Array): void {
    this.locked(() => {
      this.refresh();
      const stored = this.opts.anchor ? this.#readAnchor() : undefined;
      if (!stored || stored.seq !== this.nextSeq || stored.head !== this.#lastHash)
        this.#writeAnchor(signingSecret);
    });
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

  append(signingSecret: Uint8Array, e: NewEntry, o: { anchor?: boolean } = {}): JournalEntry {
    return this.appendMany(signingSecret, [e], o)[0]!;
  }

  /**
   * Appends several entries under one lock and one write (a batch of approvals or shares), makes
   * them durable, then anchors the new head: when this returns, what they record may leave.
   */
  appendMany(
    signingSecret: Uint8Array,
    list: readonly NewEntry[],
    o: { anchor?: boolean } = {},
  ): JournalEntry[] {
    if (list.length === 0) return [];
    return this.locked(() => {
      this.refresh();
      // Under the lock nobody else is writing: a torn last line now is a crash's, not a write in progress.
      if (existsSync(this.path) && statSync(this.path).size !== this.#readBytes) this.#load(true);
      const { lines, entries } = signLines(signingSecret, list, this.nextSeq, this.#lastHash);
      const text = lines.map((l) => l + "\n").join("");
      appendDurably(this.path, text);
      for (let i = 0; i < lines.length; i++) this.#accept(lines[i]!, this.#entries.length, true);
      this.#readBytes += Buffer.byteLength(text);
      this.#fileSeen = true;
      // With anchor: false the caller anchors (anchorNow) before what these entries record leaves.
      if (o.anchor !== false) this.#writeAnchor(signingSecret);
      return entries;
    });
  }

  /**
   * Starts a new journal file after a loss (`tca custodian journal recover --accept-loss`): a recovery
   * entry that continues the lost chain's numbering from the anchored head and says what was lost,
   * then what could be rebuilt; then anchors it. The damaged file must have been moved aside.
   */
  static startRecoveredSegment(
    path: string,
    publicKey: Uint8Array,
    store: AnchorStore,
    signingSecret: Uint8Array,
    o: { from: { seq: number; head: string }; lost: number; note: string; rebuilt: readonly NewEntry[] },
  ): Journal {
    if (existsSync(path)) throw new CustodianError("REFUSED", `journal ${path} exists: move it aside first`);
    const recovery: NewEntry = {
      kind: "recovery",
      requestId: "journal-recovery",
      tbsSha256: o.from.head,
      lost: o.lost,
      note: o.note,
    };
    const { lines } = signLines(signingSecret, [recovery, ...o.rebuilt], o.from.seq, o.from.head);
    appendDurably(path, lines.map((l) => l + "\n").join(""));
    // The anchor may go back in seq only here (a recovery after the loss of an unanchored tail);
    // its counter still goes up.
    const written = new Journal(path, publicKey);
    const stored = AnchorSchema.safeParse(store.read());
    const counter = (stored.success ? stored.data.counter : -1) + 1;
    store.write(signAnchor(signingSecret, { seq: written.nextSeq, head: written.head, counter }));
    return new Journal(path, publicKey, { anchor: store, anchorRequired: true });
  }

  /** Entries by what lookups ask for: a journal of many thousand entries is searched in O(1). */
  readonly #approvals = new Map<string, JournalEntry[]>();
  readonly #signatures = new Map<string, JournalEntry[]>();
  readonly #crls = new Map<string, JournalEntry[]>();
  #lastCrl: JournalEntry | undefined;
  readonly #checkpoints = new Map<number, JournalEntry[]>();
  #lastCheckpoint: JournalEntry | undefined;
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
    } else if (e.kind === "checkpoint") {
      const seq = e.auditSeq ?? 0;
      const l = this.#checkpoints.get(seq);
      if (l) l.push(e);
      else this.#checkpoints.set(seq, [e]);
      if (!this.#lastCheckpoint || seq > (this.#lastCheckpoint.auditSeq ?? 0)) this.#lastCheckpoint = e;
    }
  }

  /** Every entry, in order (for `tca custodian journal verify`). */
  entries(): readonly JournalEntry[] {
    this.refresh();
    return this.#entries;
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
  /** Whether this custodian signed `serial`, written in any form (src/x509/serial.ts). */
  hasSignedSerial(serial: string): boolean {
    this.refresh();
    return (this.#signatures.get(storedSerial(serial) ?? serial)?.length ?? 0) > 0;
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

  /** The audit checkpoint with the highest sequence number this custodian has signed (docs/audit.md). */
  lastCheckpoint(): { seq: number; head: string; jobId?: string; tbsSha256: string } | undefined {
    this.refresh();
    const best = this.#lastCheckpoint;
    return best
      ? {
          seq: best.auditSeq ?? 0,
          head: best.auditHead ?? "",
          tbsSha256: best.tbsSha256,
          ...(best.jobId ? { jobId: best.jobId } : {}),
        }
      : undefined;
  }

  /**
   * Why signing a checkpoint of audit entry `seq` now would be wrong, if it would: one head per
   * sequence number, and numbers only grow — as for CRL numbers (docs/architecture.md §3.9). A later
   * attempt of the job last signed carries the same bytes and may be signed again (a re-formed session).
   */
  checkpointConflict(seq: number, tbsSha256: string, jobId: string): string | undefined {
    this.refresh();
    const prior = this.#checkpoints.get(seq) ?? [];
    if (prior.some((e) => e.tbsSha256 !== tbsSha256 || e.jobId !== jobId))
      return `I have already signed a checkpoint of audit entry ${seq} (another head or signing job)`;
    const last = this.#lastCheckpoint;
    if (last && (last.auditSeq ?? 0) > seq)
      return `checkpoint of audit entry ${seq} does not increase on ${last.auditSeq ?? 0}, the last one I signed`;
    if (prior.length >= MAX_ATTEMPTS_SIGNED)
      return `I have already signed ${prior.length} attempts of this checkpoint; refusing more`;
    return undefined;
  }

  approvedRequestIds(): string[] {
    this.refresh();
    return this.#entries
      .filter((e) => e.kind === "approval" && e.decision === "approve")
      .map((e) => e.requestId);
  }
}

function signLines(signingSecret: Uint8Array, list: readonly NewEntry[], seq: number, prev: string) {
  const entries: JournalEntry[] = [];
  const lines: string[] = [];
  for (const e of list) {
    const unsigned = { ...e, seq: seq++, prev, at: new Date().toISOString() };
    const sig = Buffer.from(signEd25519(signingSecret, Buffer.from(canonicalJson(unsigned)))).toString(
      "base64url",
    );
    const entry = EntrySchema.parse({ ...unsigned, sig });
    const line = JSON.stringify(entry);
    prev = lineHash(line);
    entries.push(entry);
    lines.push(line);
  }
  return { entries, lines };
}

/**
 * Compares the journal with the coordinator's record of this custodian's decisions (request views'
 * approvals): every decision the coordinator holds was journaled before it left, so one the journal
 * lacks means the journal and its anchor were rolled back together (say, both restored from a
 * backup), which no local check can see. Decisions older than a recovery entry were accepted as lost.
 * A coordinator that lies here can only make the custodian refuse.
 */
export function decisionsMissingFrom(
  journal: Journal,
  me: string,
  views: readonly { id: string; approvals: readonly { custodian: string; decision: string; at: string }[] }[],
): { requestId: string; decision: string; at: string }[] {
  const entries = journal.entries();
  const recovered = entries.find((e) => e.kind === "recovery");
  // Allow for clock skew between this custodian (recovery time) and the coordinator (receipt time).
  const since = recovered ? Date.parse(recovered.at) + 5 * 60_000 : -Infinity;
  const missing: { requestId: string; decision: string; at: string }[] = [];
  for (const v of views)
    for (const a of v.approvals)
      if (a.custodian === me && Date.parse(a.at) > since && !journal.decisionOn(v.id))
        missing.push({ requestId: v.id, decision: a.decision, at: a.at });
  return missing;
}

/** The anchor if its signature is this custodian's, else undefined (for recovery, which trusts nothing else). */
export function verifiedAnchor(raw: unknown, publicKey: Uint8Array): JournalAnchor | undefined {
  const a = AnchorSchema.safeParse(raw);
  if (!a.success) return undefined;
  const { sig, ...unsigned } = a.data;
  return verifyEd25519(Buffer.from(sig, "base64url"), Buffer.from(canonicalJson(unsigned)), publicKey)
    ? a.data
    : undefined;
}

/**
 * What can be kept of a damaged journal: its entries from the start up to the first line that is
 * torn, malformed, out of chain or badly signed.
 */
export function salvageJournal(
  path: string,
  publicKey: Uint8Array,
): { entries: NewEntry[]; nextSeq: number; head: string; brokenAtLine?: number } {
  const out: NewEntry[] = [];
  if (!existsSync(path)) return { entries: out, nextSeq: 0, head: GENESIS };
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  let prev = GENESIS;
  let seq = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "" && i === lines.length - 1) break;
    let e: JournalEntry | undefined;
    try {
      const p = EntrySchema.safeParse(JSON.parse(line));
      e = p.success ? p.data : undefined;
    } catch {
      e = undefined;
    }
    if (e && i === 0 && e.kind === "recovery") {
      seq = e.seq;
      prev = e.prev;
    }
    const ok =
      e !== undefined &&
      i < lines.length - 1 &&
      e.seq === seq &&
      e.prev === prev &&
      verifyEd25519(
        Buffer.from(e.sig, "base64url"),
        Buffer.from(canonicalJson((({ sig: _sig, ...u }) => u)(e))),
        publicKey,
      );
    if (!ok) return { entries: out, nextSeq: seq, head: prev, brokenAtLine: i + 1 };
    const entry: Partial<JournalEntry> = { ...e! };
    for (const k of ["seq", "prev", "at", "sig"] as const) delete entry[k];
    if (entry.kind !== "recovery") out.push(entry as NewEntry);
    prev = lineHash(line);
    seq++;
  }
  return { entries: out, nextSeq: seq, head: prev };
}

/** Appends and fsyncs (and fsyncs the directory when the file is new), so the lines survive a crash. */
function appendDurably(path: string, text: string): void {
  const created = !existsSync(path);
  const fd = openSync(path, "a", 0o600);
  try {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) fsyncDir(dirname(path));
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported on every platform */
  }
}
