// The questions `tca init` asks on a terminal. Each answer is checked at once by the same checks
// the flags go through (src/config/init.ts), and asked again when it is wrong; an empty answer
// takes the default shown in brackets. Input and output are streams, so tests drive it with
// their own.
import { createInterface } from "node:readline/promises";
import {
  caSubject,
  checkCustodians,
  checkName,
  checkProfiles,
  checkThreshold,
  checkTlsName,
  checkUnique,
  INIT_DEFAULTS,
  InitSpecError,
  majority,
  normalizeDomain,
  PROFILE_TEMPLATES,
  splitList,
  type InitSpec,
} from "../config/init.ts";
import type { CustodianEntry } from "../config/schema.ts";
import { UsageError } from "./output.ts";

export interface PromptIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/** Reads a roster entry from a file name (or pasted one-line JSON); throws InitSpecError. */
export type EntryReader = (answer: string) => CustodianEntry;

/**
 * Asks for every setting, offering what the flags gave (`start`) or the defaults. Returns a spec
 * that checkSpec accepts as far as each answer goes; planInit checks it whole.
 */
export async function promptSpec(
  start: Partial<InitSpec>,
  io: PromptIo,
  readEntry: EntryReader,
): Promise<InitSpec> {
  const rl = createInterface({
    input: io.input,
    output: io.output,
    terminal: (io.output as { isTTY?: boolean }).isTTY === true,
  });
  // The iterator buffers lines that arrive before they are asked for (piped or pasted input).
  const lines = rl[Symbol.asyncIterator]();
  const say = (text: string): void => void io.output.write(`${text}\n`);

  async function ask<T>(
    question: string,
    fallback: string | undefined,
    parse: (answer: string) => T,
  ): Promise<T> {
    for (;;) {
      rl.setPrompt(`${question}${fallback === undefined || fallback === "" ? "" : ` [${fallback}]`}: `);
      rl.prompt();
      const next = await lines.next();
      if (next.done === true)
        throw new UsageError(`input ended before "${question}" was answered; nothing was written`);
      const answer = String(next.value).trim();
      try {
        return parse(answer === "" ? (fallback ?? "") : answer);
      } catch (e) {
        if (!(e instanceof InitSpecError)) throw e;
        say(`  ${e.message}`);
      }
    }
  }
  const optional = (v: string): string | undefined => (v === "" || v === "-" ? undefined : v);
  const list = (v: string): string[] => (v === "-" ? [] : splitList(v));

  try {
    say("tca init: a ca-config for a threshold CA. Empty answers take the [default]; '-' clears one.");
    const dir = await ask("Directory to write ca-config into", start.dir ?? INIT_DEFAULTS.dir, (v) => {
      if (v === "") throw new InitSpecError("give a directory");
      return v;
    });
    const caName = await ask("CA name (the root certificate's CN)", start.caName, (v) => {
      caSubject(v);
      return v;
    });
    const caOrg = await ask("Organization (O), optional", start.caOrg, (v) => {
      caSubject(caName, optional(v));
      return optional(v);
    });
    const caCountry = await ask("Country (C, two letters), optional", start.caCountry, (v) => {
      caSubject(caName, caOrg, optional(v));
      return optional(v)?.toUpperCase();
    });
    const custodians = await ask(
      "Custodian names, comma-separated (2 to 64)",
      (start.custodians ?? INIT_DEFAULTS.custodians).join(","),
      (v) => {
        const names = splitList(v);
        checkCustodians(names);
        return names;
      },
    );
    const entries: CustodianEntry[] = (start.entries ?? []).filter((e) => custodians.includes(e.name));
    for (const name of custodians) {
      if (entries.some((e) => e.name === name)) continue;
      const entry = await ask(
        `${name}'s roster entry: a file with the output of \`tca custodian init --name ${name}\` (empty: a placeholder to fill in later)`,
        undefined,
        (v) => {
          if (v === "") return undefined;
          const e = readEntry(v);
          if (e.name !== name) throw new InitSpecError(`that entry is ${e.name}'s, not ${name}'s`);
          if (entries.some((o) => o.signingKey === e.signingKey || o.hpkeKey === e.hpkeKey))
            throw new InitSpecError("that entry has the keys of another custodian");
          return e;
        },
      );
      if (entry !== undefined) entries.push(entry);
    }
    const n = custodians.length;
    const threshold = await ask(
      `Threshold: how many of the ${n} custodians must sign (2 to ${n})`,
      String(start.threshold !== undefined && start.threshold <= n ? start.threshold : majority(n)),
      (v) => {
        if (!/^\d+$/.test(v)) throw new InitSpecError(`a whole number from 2 to ${n}`);
        const t = Number(v);
        for (const w of checkThreshold(t, n)) say(`  warning: ${w}`);
        return t;
      },
    );
    const profiles = await ask(
      `Profiles, from the templates ${PROFILE_TEMPLATES.join(", ")}`,
      (start.profiles ?? INIT_DEFAULTS.profiles).join(","),
      (v) => {
        const p = splitList(v);
        checkProfiles(p);
        return p;
      },
    );
    const domain = await ask(
      "DNS domain requesters' names must be under (and intermediates are constrained to), optional",
      start.domain,
      (v) => (optional(v) === undefined ? undefined : normalizeDomain(v)),
    );
    const requesters = await ask(
      "Requesters (who may request certificates; each gets a token), comma-separated, optional",
      start.requesters?.join(","),
      (v) => {
        const names = list(v);
        for (const r of names) checkName("requester", r);
        checkUnique("requester", names);
        return names;
      },
    );
    const admins = await ask(
      "Admins (start the key ceremony, revoke anything; each gets a token), comma-separated",
      (start.admins ?? INIT_DEFAULTS.admins).join(","),
      (v) => {
        const names = list(v);
        for (const a of names) checkName("admin", a);
        checkUnique("admin", names);
        return names;
      },
    );
    const tlsNames = await ask(
      "Names of the coordinator's own certificate for `tca serve --tls auto`, comma-separated, optional",
      start.tlsNames?.join(","),
      (v) => {
        const names = list(v);
        for (const t of names) checkTlsName(t);
        if (names.length > 0 && !profiles.includes("server"))
          throw new InitSpecError("these need the server profile; leave empty or add server to the profiles");
        return names;
      },
    );
    const publicUrl = await ask(
      "Public URL of the coordinator (written into certificates' CRL and CA links), optional",
      start.publicUrl,
      (v) => {
        const u = optional(v);
        if (u !== undefined && !/^https?:\/\/[^/\s]+/.test(u))
          throw new InitSpecError(`"${u}" is not an http:// or https:// URL`);
        return u;
      },
    );
    const tokenDir = await ask(
      "Directory for the token files (empty: print the tokens once instead)",
      start.tokenDir,
      optional,
    );
    return {
      dir,
      caName,
      caOrg,
      caCountry,
      rootValidityDays: start.rootValidityDays ?? INIT_DEFAULTS.rootValidityDays,
      publicUrl,
      custodians,
      entries,
      threshold,
      profiles,
      domain,
      requesters,
      admins,
      tlsNames,
      tokenDir,
    };
  } finally {
    rl.close();
  }
}
