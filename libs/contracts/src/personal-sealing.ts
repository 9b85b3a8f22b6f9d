import { z } from 'zod';
import { envelopeShape, personalSchema, sealedPersonalSchema, BASE64URL_32_BYTES, TRANSPORT_SEALING_ALG, type EventEnvelope } from './envelope';
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

/**
 * Transport sealing (RFC 9180 HPKE, export-only mode): producers seal `personal` locally
 * to the audit service's current transport key (`transportSealedPersonalSchema`) instead
 * of asking SEAL_PERSONAL_SUBJECT for every append; the audit service opens it at ingest
 * and seals it under the data subject's key. This subject serves the public keys. Only
 * the audit service may answer it (NATS permissions: it alone subscribes to
 * palisade.rpc.audit.>), which is all that makes a key in its reply audit's.
 */
export const TRANSPORT_KEYS_SUBJECT = rpcSubject('audit', 'transport-keys');

/** HPKE `info` of every transport sealing context. */
export const TRANSPORT_SEALING_INFO = 'palisade transport sealing v1: personal data to the audit service';
/** HPKE exporter context of the epoch's AES-256-GCM key (32 bytes exported). */
export const TRANSPORT_SEALING_EXPORTER_CONTEXT = 'palisade transport sealing v1: A256GCM key for personal members';

/** What of its event a transport-sealed member is bound to (`transportSealingAad`). */
export type TransportSealedEventBinding = Pick<EventEnvelope, 'id' | 'tenantId' | 'source' | 'type'>;

/**
 * The associated data of a transport-sealed member, the one place it is built (both
 * sides): it opens only in the event it was sealed for (id, tenant, source and type: it
 * cannot be replayed under another tenant, source or type with the same event id), for
 * the same subject, under the same audit key and encapsulation.
 */
export function transportSealingAad(event: TransportSealedEventBinding, subjectId: string, kid: string, enc: string): Buffer {
  return Buffer.from(JSON.stringify(['palisade-transport-seal-v2', event.id, event.tenantId, event.source, event.type, subjectId, kid, enc]), 'utf8');
}

/** One audit transport public key, as served. */
export const transportPublicKeySchema = z.strictObject({
  kid: z.string().regex(BASE64URL_32_BYTES, 'must be the key thumbprint (43 base64url characters)'),
  kty: z.literal('OKP'),
  crv: z.literal('X25519'),
  /** The raw 32-byte X25519 public key, base64url. */
  x: z.string().regex(BASE64URL_32_BYTES, 'must be 32 bytes in base64url'),
  alg: z.literal(TRANSPORT_SEALING_ALG),
  createdAt: z.iso.datetime(),
  /**
   * Seal nothing new under it after this instant: its private key is kept (for members
   * waiting in outboxes) until at least the grace period after it.
   */
  notAfter: z.iso.datetime(),
});
export type TransportPublicKey = z.infer<typeof transportPublicKeySchema>;

/** The keys producers may seal to now, the newest first (usually one). */
export const transportKeysReplySchema = z.strictObject({ keys: z.array(transportPublicKeySchema).max(16) });
export type TransportKeysReply = z.infer<typeof transportKeysReplySchema>;
