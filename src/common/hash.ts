// SHA-256 as lowercase hex: TBS hashes in approvals and journals, request ids, key ids.
import { createHash } from "node:crypto";

/** SHA-256 of bytes (or of a string's UTF-8 encoding), lowercase hex. */
export const sha256Hex = (data: Uint8Array | string): string =>
  createHash("sha256").update(data).digest("hex");
