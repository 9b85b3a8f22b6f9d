import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';
import { ACTION_CLASSES } from '../coverage/action-classes';
import { EARLIEST_INDEX_MS, safeText } from '../validation';

const text = safeText;
const timestamp = z.iso
  .datetime({ offset: true, message: 'must be an RFC 3339 date-time' })
  .refine((v) => Date.parse(v) >= EARLIEST_INDEX_MS, 'must be in year 1 or later');
const list = <T extends z.ZodType>(item: T) => z.preprocess((v) => (typeof v === 'string' ? v.split(',') : v), z.array(item).min(1).max(50));

export const eventsQuerySchema = z.strictObject({
  tenant: z.string().regex(TENANT_ID, 'must be a tenant id').optional(),
  from: timestamp.optional(),
  to: timestamp.optional(),
  actor: text(256).optional(),
  actionClass: list(z.enum(ACTION_CLASSES)).optional(),
  type: list(text(128)).optional(),
  subject: text(256).optional(),
  cursor: text(512).optional(),
  limit: z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(1000, 'at most 1000').default(100),
});
export type EventsQuery = z.infer<typeof eventsQuerySchema>;

export const exportQuerySchema = eventsQuerySchema.omit({ cursor: true, limit: true }).extend({
  format: z.enum(['ndjson', 'csv']),
  limit: z.coerce.number().int('must be an integer').min(1).max(1_000_000, 'at most 1,000,000').default(100_000),
});
export type ExportQuery = z.infer<typeof exportQuerySchema>;
