// Issuance per day and expiries per week, counted from the inventory (docs/inventory.md) and drawn
// as bar charts in inline SVG on the server: no chart library, no script.
import type { CertificateRecord, Store } from "../coordinator/store/types.ts";

const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** At most this many certificates are read per chart (pages of 500). */
export const CHART_LIMIT = 20_000;
const PAGE = 500;

export interface Bar {
  label: string;
  short: string;
  value: number;
  x: number;
  y: number;
  width: number;
  height: number;
  showLabel: boolean;
}

export interface Chart {
  id: string;
  title: string;
  summary: string;
  unit: string;
  width: number;
  height: number;
  left: number;
  bottom: number;
  bars: Bar[];
  ticks: { y: number; value: number }[];
}

type Lister = Pick<Store, "listCertificates">;

/** Reads certificates page by page while `keep` holds, up to CHART_LIMIT. */
async function collect(
  store: Lister,
  q: Omit<Parameters<Store["listCertificates"]>[0], "limit" | "after">,
  keep: (r: CertificateRecord) => boolean,
): Promise<{ rows: CertificateRecord[]; truncated: boolean }> {
  const rows: CertificateRecord[] = [];
  let after: { key: string; seq: number } | undefined;
  for (;;) {
    const page = await store.listCertificates({ ...q, limit: PAGE, ...(after ? { after } : {}) });
    for (const r of page) {
      if (!keep(r)) return { rows, truncated: false };
      rows.push(r);
      if (rows.length >= CHART_LIMIT) return { rows, truncated: true };
    }
    const last = page[page.length - 1];
    if (page.length < PAGE || !last) return { rows, truncated: false };
    after = { key: q.sort === "issued" ? last.issuedAt : last.notAfter, seq: last.seq };
  }
}

const dayOf = (t: number) => Math.floor(t / DAY) * DAY;
const isoDay = (t: number) => new Date(t).toISOString().slice(0, 10);

/** Issued per UTC day over the last `days` days and valid certificates expiring per week ahead. */
export async function chartData(
  store: Lister,
  now: number,
  owner: string | undefined,
  days = 30,
  weeks = 12,
): Promise<{ issued: Chart; expiring: Chart; truncated: boolean }> {
  const iso = new Date(now).toISOString();
  const scope = owner !== undefined ? { requester: owner } : {};
  const firstDay = dayOf(now) - (days - 1) * DAY;
  const issued = await collect(
    store,
    { now: iso, sort: "issued", descending: true, ...scope },
    (r) => Date.parse(r.issuedAt) >= firstDay,
  );
  const perDay = new Array<number>(days).fill(0);
  for (const r of issued.rows) {
    const i = Math.floor((Date.parse(r.issuedAt) - firstDay) / DAY);
    if (i >= 0 && i < days) perDay[i]! += 1;
  }
  const end = now + weeks * WEEK;
  const expiring = await collect(
    store,
    {
      now: iso,
      sort: "notAfter",
      descending: false,
      status: "valid",
      expiresAfter: iso,
      expiresBefore: new Date(end).toISOString(),
      ...scope,
    },
    () => true,
  );
  const perWeek = new Array<number>(weeks).fill(0);
  for (const r of expiring.rows) {
    const i = Math.floor((Date.parse(r.notAfter) - now) / WEEK);
    if (i >= 0 && i < weeks) perWeek[i]! += 1;
  }
  const dayBars = perDay.map((value, i) => {
    const t = firstDay + i * DAY;
    return { label: isoDay(t), short: isoDay(t).slice(5), value, labelled: i % 7 === (days - 1) % 7 };
  });
  const weekBars = perWeek.map((value, i) => {
    const from = now + i * WEEK;
    return {
      label: `${isoDay(from)} to ${isoDay(from + WEEK - DAY)}`,
      short: i === 0 ? "this wk" : `+${i} wk`,
      value,
      labelled: i % 2 === 0,
    };
  });
  const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    issued: draw(
      "issued",
      `Certificates issued per day, last ${days} days (UTC)`,
      `${total(perDay)} issued in ${days} days${peak(dayBars)}.`,
      "Day",
      dayBars,
    ),
    expiring: draw(
      "expiring",
      `Valid certificates expiring per week, next ${weeks} weeks`,
      `${total(perWeek)} expire in ${weeks} weeks${peak(weekBars)}.`,
      "Week",
      weekBars,
    ),
    truncated: issued.truncated || expiring.truncated,
  };
}

function peak(bars: { label: string; value: number }[]): string {
  const top = bars.reduce((a, b) => (b.value > a.value ? b : a), { label: "", value: 0 });
  return top.value > 0 ? `; most: ${top.value} (${top.label})` : "";
}

function draw(
  id: string,
  title: string,
  summary: string,
  unit: string,
  data: { label: string; short: string; value: number; labelled: boolean }[],
): Chart {
  const width = 720;
  const height = 240;
  const left = 40;
  const top = 10;
  const bottom = height - 26;
  const max = Math.max(1, ...data.map((d) => d.value));
  // Round tick steps (1, 2, 5 × 10^n), about four of them.
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? mag * 10);
  const scaleMax = Math.ceil(max / step) * step;
  const plot = bottom - top;
  const slot = (width - 4 - left) / data.length;
  const round = (n: number) => Math.round(n * 10) / 10;
  const bars = data.map((d, i) => {
    const h = (d.value / scaleMax) * plot;
    return {
      label: d.label,
      short: d.short,
      value: d.value,
      x: round(left + i * slot + slot * 0.15),
      y: round(bottom - h),
      width: round(slot * 0.7),
      height: round(h),
      showLabel: d.labelled,
    };
  });
  const ticks = [];
  for (let v = step; v <= scaleMax; v += step)
    ticks.push({ y: round(bottom - (v / scaleMax) * plot), value: v });
  return { id, title, summary, unit, width, height, left, bottom, bars, ticks };
}
