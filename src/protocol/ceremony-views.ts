// The key ceremony's answers (GET /api/v1/ceremonies/{id} and …/messages), as zod schemas: the one
// definition the custodians parse with and the OpenAPI document's components come from. Apart from
// ./views.ts because they need the announcement and envelope schemas, which load FROST; `tca
// request` loads ./views.ts and must stay light.
import { z } from "zod";
import { AnnouncementSchema } from "./announcement.ts";
import { SignedEnvelopeSchema } from "./envelope.ts";
import { CeremonyStatusSchema, DkgMessageTypeSchema } from "./enums.ts";

export const CeremonyFailureSchema = z.object({ reason: z.string(), culprits: z.array(z.string()) }).strict();

/** GET /api/v1/ceremonies/{id}. */
export const CeremonyViewSchema = z
  .object({
    id: z.uuid(),
    status: CeremonyStatusSchema,
    announcement: AnnouncementSchema,
    failure: CeremonyFailureSchema.nullable(),
    received: z
      .partialRecord(DkgMessageTypeSchema, z.array(z.string()))
      .meta({ description: "message type → custodians that sent it" }),
  })
  .strict();
export type CeremonyView = z.infer<typeof CeremonyViewSchema>;

/** GET /api/v1/ceremonies/{id}/messages?type=: one stage's messages. */
export const CeremonyMessagesSchema = z
  .object({
    id: z.uuid(),
    type: DkgMessageTypeSchema,
    status: CeremonyStatusSchema,
    failure: CeremonyFailureSchema.nullable(),
    complete: z.boolean().meta({ description: "every custodian on the roster has sent this type" }),
    messages: z.array(SignedEnvelopeSchema),
  })
  .strict();
export type CeremonyMessagesView = z.infer<typeof CeremonyMessagesSchema>;
