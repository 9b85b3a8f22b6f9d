import { z } from 'zod';
import { GROUPS } from './reports.repository';

const instant = z.string().refine((s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}/.test(s), 'must be an ISO 8601 date or instant');

/** `GET /v1/usage?from&to&groupBy=team,agent,model,day&timeZone&format=json|csv|focus`. */
export const usageQuerySchema = z.strictObject({
  from: instant,
  to: instant,
  groupBy: z
    .string()
    .default('day')
    .transform((s) => [...new Set(s.split(',').map((g) => g.trim()).filter(Boolean))])
    .refine((l) => l.every((g) => (GROUPS as readonly string[]).includes(g)), `must list some of ${GROUPS.join(', ')}`),
  timeZone: z.string().min(1).max(64).default('UTC'),
  format: z.enum(['json', 'csv', 'focus']).default('json'),
});
