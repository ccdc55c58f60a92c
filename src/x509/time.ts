// Certificate validity times. RFC 5280 §4.1.2.5: dates through 2049 MUST be UTCTime
// (YYMMDDHHMMSSZ), dates in 2050 or later MUST be GeneralizedTime (YYYYMMDDHHMMSSZ); both in
// UTC ("Z"), with seconds and no fractional seconds (§4.1.2.5.1, §4.1.2.5.2).
import { TAG, tlv } from "./der.ts";
import { DerReadError, type Tlv } from "./der-read.ts";

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** Drops milliseconds: certificates carry whole seconds. */
export function truncateToSeconds(d: Date): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new RangeError("invalid date");
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Whether RFC 5280 requires UTCTime for this instant (years 1950..2049). */
export function usesUtcTime(d: Date): boolean {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050;
}

export function encodeTime(date: Date): Uint8Array {
  const d = truncateToSeconds(date);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new RangeError(`year ${y} cannot be encoded`);
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return usesUtcTime(d)
    ? tlv(TAG.UTC_TIME, new Uint8Array(Buffer.from(`${pad(y % 100)}${rest}`, "ascii")))
    : tlv(TAG.GENERALIZED_TIME, new Uint8Array(Buffer.from(`${pad(y, 4)}${rest}`, "ascii")));
}

/** Decodes the strict RFC 5280 forms only; anything else (offsets, fractions, no seconds) throws. */
export function decodeTime(t: Tlv): Date {
  const s = Buffer.from(t.value).toString("ascii");
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // §4.1.2.5.1
  } else if (
    t.tag === TAG.GENERALIZED_TIME &&
    (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))
  ) {
    year = Number(m[1]);
  } else {
    throw new DerReadError(`time "${s}" is not in RFC 5280 form`);
  }
  const [mo, da, h, mi, se] = m.slice(2, 7).map(Number) as [number, number, number, number, number];
  const d = new Date(Date.UTC(year, mo - 1, da, h, mi, se));
  if (d.getUTCMonth() !== mo - 1 || d.getUTCDate() !== da || h > 23 || mi > 59 || se > 59) {
    throw new DerReadError(`time "${s}" is not a valid date`);
  }
  if (year < 100) d.setUTCFullYear(year);
  return d;
}
