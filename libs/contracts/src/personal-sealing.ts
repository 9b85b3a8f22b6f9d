import { z } from 'zod';
import { EVENT_TYPE, personalSchema, sealedPersonalSchema, TENANT_ID } from './envelope';
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
        id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'must be a lowercase UUIDv7'),
        type: z.string().regex(EVENT_TYPE, 'must be <service>.<aggregate>.<past-tense verb> of a known service'),
        tenantId: z.string().regex(TENANT_ID, 'must be a tenant id'),
        /** The event's data: which key seals it may depend on it (auth's failed sign-ins of unknown accounts). */
        data: z.record(z.string(), z.unknown()),
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
