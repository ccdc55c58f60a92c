// Named points in a request's life where the kill-at-each-step tests stop a coordinator dead
// (docs/storage.md, "Crash safety"). With TCA_CRASH_AT=<point> in its environment, a coordinator
// SIGKILLs itself the first time it reaches that point: no cleanup, no flush, exactly like a power
// cut. Without the variable (always, outside those tests) a crash point does nothing.
export type CrashPoint =
  | "after-intake" // a request is stored; the requester has no answer yet
  | "after-approval" // an approval is committed
  | "after-package" // a signing package is committed; no share yet
  | "after-share" // a share is committed; not all shares are in
  | "before-publish"; // the signature is aggregated and verified; the certificate is not stored

const armed = process.env.TCA_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, "SIGKILL");
}
