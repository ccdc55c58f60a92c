// The admin API for ACME external account binding keys (RFC 8555 §7.3.4; docs/acme.md), written once:
// the server (src/acme/eab.ts) checks with these, the CLI (`tca acme eab-key`) parses answers with
// them, and the OpenAPI document is generated from them.
import { z } from "zod";

export const EAB_KEYS_PATH = "/api/v1/acme/eab-keys";

export const CreateEabKeyBodySchema = z.object({ requester: z.string().min(1).max(64) }).strict();

export const EabKeyCreatedSchema = z
  .object({
    keyId: z.string(),
    hmacKey: z.string().meta({ description: "base64url, 32 bytes; shown once, never again" }),
    requester: z.string(),
    createdAt: z.string(),
  })
  .strict();
export type EabKeyCreated = z.infer<typeof EabKeyCreatedSchema>;

export const EabKeyViewSchema = z
  .object({
    keyId: z.string(),
    requester: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
    bound: z.boolean(),
    accountId: z.string().nullable().meta({ description: "the ACME account's id, once bound" }),
    boundAt: z.string().nullable(),
  })
  .strict();
export type EabKeyView = z.infer<typeof EabKeyViewSchema>;
export const EabKeyListSchema = z.object({ keys: z.array(EabKeyViewSchema) }).strict();
