import { z } from 'zod';
import { envelopeShape, personalSchema, sealedPersonalSchema } from './envelope';
import { rpcSubject } from './subjects';

/**
 * Sealing `personal` at the producer (issue 10, "Personal data at rest"): before an event
 * with personal data is stored, a service asks the audit service, which holds the
 * per-subject keys, to seal it. The keys never leave the audit service; a service may
 * seal only its own events (the answering side checks the event type against the caller).
 */
export const SEAL_PERSONAL_SUBJECT = rpcSubject('audit', 'seal-personal');

/** At most this many events per request. */
export const MAX_SEAL_BATCH = 500;

export const sealPersonalRequestSchema = z.strictObject({
  events: z
    .array(
      z.strictObject({
        id: envelopeShape.id,
        type: envelopeShape.type,
        tenantId: envelopeShape.tenantId,
        /** The event's data: which key seals it may depend on it (auth's failed sign-ins of unknown accounts). */
        data: envelopeShape.data,
        personal: personalSchema,
      }),
    )
    .min(1)
    .max(MAX_SEAL_BATCH, `at most ${MAX_SEAL_BATCH} events per request`),
});
export type SealPersonalRequest = z.infer<typeof sealPersonalRequestSchema>;

/** One sealed member per event of the request, in its order. */
export const sealPersonalReplySchema = z.strictObject({ sealed: z.array(sealedPersonalSchema) });
export type SealPersonalReply = z.infer<typeof sealPersonalReplySchema>;
