// Strict parsing of query parameters: a number is decimal digits and nothing else. `Number()` (and
// so `z.coerce.number()`) reads "0x10" as 16, "1e1" as 10 and " 5 " as 5; none of these is a
// number a client meant to send, so each is refused with a message naming the parameter.
import { z } from "zod";
import { CoordinatorError } from "../errors.ts";

/** The longest long-poll any route allows (`?wait=`), in seconds: requestTimeout must exceed it. */
export const MAX_WAIT_SECONDS = 60;

/** A whole number from `min` to `max`, written as 1–15 decimal digits (a safe integer). */
export const decimalInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/, "must be a whole number written in decimal digits")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** Zod issues as one sentence: `name: problem; name: problem`, unknown parameters named. */
export function describeIssues(error: z.ZodError, where = "query parameter"): string {
  return error.issues
    .map((i) => {
      if (i.code === "unrecognized_keys") return `unknown ${where} ${i.keys.join(", ")}`;
      const name = i.path.join(".");
      if (i.code === "invalid_type" && i.input === undefined) return `${where} ${name} is required`;
      if (i.code === "invalid_type") return `${where} ${name} must be given once, as text`;
      return `${where} ${name} ${i.message}`;
    })
    .join("; ");
}

/** Parses `query` or throws 400 with `summary` followed by what exactly is wrong. */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown, summary: string): z.output<S> {
  const q = schema.safeParse(query);
  if (!q.success) throw new CoordinatorError("BAD_REQUEST", `${summary} (${describeIssues(q.error)})`);
  return q.data;
}

/** `?wait=S&since=STATE/N`: a request view's long-poll (answers once its state differs from `since`). */
export const ViewQuery = z
  .object({
    wait: decimalInt(0, MAX_WAIT_SECONDS).default(0),
    since: z
      .string()
      .regex(/^[a-z]{1,10}\/\d{1,3}$/)
      .optional(),
  })
  .strict();
