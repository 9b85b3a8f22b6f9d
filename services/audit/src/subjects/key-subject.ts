import type { EventEnvelope } from '@palisade/contracts';
import { storableText } from '../validation';

const isAbsent = (v: unknown) => v === null || v === undefined;

/** Prefix of the per-tenant key subject that seals personal data of subjects not keyed one by one. */
export const SHARED_KEY_SUBJECT_PREFIX = '~unknown-subjects/';

/** The per-tenant key subject for personal data not worth (or not able to get) a key of its own. */
export const sharedKeySubject = (tenantId: string) => `${SHARED_KEY_SUBJECT_PREFIX}${tenantId}`;

/**
 * Which key seals an event's `personal` member: the data subject's own key, except
 * - a failed sign-in for an account that does not exist (`auth.user.sign-in-failed`
 *   without a `userId`): every typed name is a "subject" of its own, so a spray of
 *   unknown names would create a key (a row, a KEK wrap, a cache entry) per name. They
 *   share their tenant's "unknown subjects" key instead;
 * - a subject id PostgreSQL cannot store exactly (NUL, lone surrogate): no key row can
 *   name it, so it shares its tenant's key too (rather than stalling ingest).
 * The record still names the subject it was given (`personal.subjectId`). Pure.
 */
export function keySubjectOf(event: Pick<EventEnvelope, 'type' | 'tenantId' | 'data' | 'personal'>): string | undefined {
  const subjectId = event.personal?.subjectId;
  if (subjectId === undefined) return undefined;
  if (!storableText(subjectId)) return sharedKeySubject(event.tenantId);
  if (event.type === 'auth.user.sign-in-failed' && isAbsent((event.data as { userId?: unknown }).userId)) return sharedKeySubject(event.tenantId);
  return subjectId;
}
