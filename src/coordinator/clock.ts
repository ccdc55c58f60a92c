// Coordinator time is the database's time, not this machine's (docs/storage.md, "Clocks").
// Replicas stamp times that other replicas compare with their own: when a signing package was
// formed, when a custodian process was last heard from, when an offer expires, when a request
// falls back to every reviewer. Two replicas whose clocks disagree by seconds would time packages
// out early or late. So every replica measures how far its clock is from the database's (a query
// every few seconds, with the round trip halved) and reads the time through this module: all of
// them then keep one clock, the database's, to within a few milliseconds. With SQLite (one
// process, one machine) the offset stays 0.

let offsetMs = 0;

export const clock = {
  /** Milliseconds since the epoch, on the database's clock. */
  now: (): number => Date.now() + offsetMs,
  date: (): Date => new Date(Date.now() + offsetMs),
  iso: (): string => new Date(Date.now() + offsetMs).toISOString(),
};

/** A round trip longer than this says too little about the offset: the sample is not used. */
const MAX_ROUND_TRIP_MS = 100;

/**
 * Follows the database's clock: `databaseTime` answers the database's current time in ms, and
 * the offset is taken at the middle of the round trip. Returns the offset now in use.
 */
export async function followDatabaseClock(databaseTime: () => Promise<number | null>): Promise<number> {
  const sent = Date.now();
  const db = await databaseTime();
  const received = Date.now();
  if (db !== null && received - sent <= MAX_ROUND_TRIP_MS) offsetMs = Math.round(db - (sent + received) / 2);
  return offsetMs;
}
