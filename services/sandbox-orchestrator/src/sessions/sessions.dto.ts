import { z } from 'zod';
import { SHARE_ROLES, type ShareRole } from './sessions.events';

/** A session id (UUIDv7, lowercase). */
export const sessionIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a session id (lowercase UUID)');
/** A user's or an agent's id, as the auth service issues them. */
export const principalIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, 'must be an id of letters, digits, _ . : @ - (at most 128)');

export const createSessionSchema = z.strictObject({});
export const shareSchema = z.strictObject({ role: z.enum(SHARE_ROLES as [ShareRole, ...ShareRole[]]) });
export const listSessionsSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: sessionIdSchema.optional(),
});
