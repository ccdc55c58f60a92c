// The store routes every call made inside transaction() to that transaction, by async context
// (AsyncLocalStorage, which follows setImmediate and promises). Work that must not join the
// caller's transaction — a write that stands on its own, a kick that opens its own transaction —
// is started from this module's root context instead.
import { AsyncResource } from "node:async_hooks";

const ROOT = new AsyncResource("tca.coordinator.root");

/** Runs fn outside any transaction's async context. */
export const outsideTransactions = <T>(fn: () => T): T => ROOT.runInAsyncScope(fn);
