// What the coordinator announces when a ceremony starts. Every custodian compares it with its own
// ca-config before it sends anything (refuse a different roster, threshold or subject: docs/architecture.md
// §5).
import { z } from "zod";
import type { LoadedConfig } from "../config/load.ts";
import { identifierForName } from "../threshold/suite.ts";

export const AnnouncementSchema = z
  .object({
    ceremonyId: z.string().regex(/^[0-9a-f-]{36}$/),
    threshold: z.number().int().min(2),
    custodians: z.array(
      z
        .object({ name: z.string(), identifier: z.string(), signingKey: z.string(), hpkeKey: z.string() })
        .strict(),
    ),
    caSubject: z.string(),
    rootValidityDays: z.number().int().positive(),
    configDigest: z.string(),
    createdAt: z.string(),
  })
  .strict();
export type Announcement = z.infer<typeof AnnouncementSchema>;

export function buildAnnouncement(ceremonyId: string, loaded: LoadedConfig): Announcement {
  const c = loaded.config;
  return {
    ceremonyId,
    threshold: c.threshold,
    custodians: c.custodians.map((cu) => ({
      name: cu.name,
      identifier: identifierForName(cu.name),
      signingKey: cu.signingKey,
      hpkeKey: cu.hpkeKey,
    })),
    caSubject: c.ca.subject,
    rootValidityDays: c.ca.rootValidityDays,
    configDigest: loaded.digest,
    createdAt: new Date().toISOString(),
  };
}

/** Differences between an announcement and a node's own ca-config, as sentences; empty if none. */
export function compareAnnouncement(a: Announcement, own: LoadedConfig): string[] {
  const c = own.config;
  const problems: string[] = [];
  if (a.threshold !== c.threshold)
    problems.push(`threshold is ${a.threshold}, my ca-config says ${c.threshold}`);
  const mine = new Map(c.custodians.map((cu) => [cu.name, cu]));
  const theirs = new Map(a.custodians.map((cu) => [cu.name, cu]));
  for (const name of theirs.keys())
    if (!mine.has(name)) problems.push(`roster names ${name}, who is not in my ca-config`);
  for (const name of mine.keys()) if (!theirs.has(name)) problems.push(`roster leaves out ${name}`);
  for (const [name, cu] of theirs) {
    const m = mine.get(name);
    if (!m) continue;
    if (m.signingKey !== cu.signingKey || m.hpkeKey !== cu.hpkeKey)
      problems.push(`roster has different keys for ${name}`);
    if (cu.identifier !== identifierForName(name))
      problems.push(`roster has a wrong FROST identifier for ${name}`);
  }
  if (a.caSubject !== c.ca.subject)
    problems.push(`CA subject is "${a.caSubject}", my ca-config says "${c.ca.subject}"`);
  if (a.rootValidityDays !== c.ca.rootValidityDays)
    problems.push(`root validity is ${a.rootValidityDays} days, my ca-config says ${c.ca.rootValidityDays}`);
  if (problems.length === 0 && a.configDigest !== own.digest)
    problems.push("ca-config digest differs from mine");
  return problems;
}
