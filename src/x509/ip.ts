// IP addresses in iPAddress GeneralNames: 4 octets for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6).
import { isIPv4, isIPv6 } from "node:net";

/** Text -> octets, or undefined when the text is not an IPv4/IPv6 address. */
export function ipToBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split(".").map(Number));
  if (!isIPv6(text) || text.includes("%")) return undefined;
  let s = text;
  const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = v4[1]!.split(".").map(Number) as [number, number, number, number];
    s =
      s.slice(0, -v4[1]!.length) +
      `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? (s.split("::") as [string, string]) : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** Octets -> text (IPv6 in RFC 5952 form); undefined for any other length. */
export function bytesToIp(b: Uint8Array): string | undefined {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length !== 16) return undefined;
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  // RFC 5952 §4.2: compress the longest run (length >= 2) of zero groups, the first if tied.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((v) => v.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
