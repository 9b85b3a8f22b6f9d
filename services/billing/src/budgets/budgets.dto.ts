import { z } from 'zod';
import { LEVELS, PERIODS } from './budgets.events';

export const levelSchema = z.enum(LEVELS);
export const subjectSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, 'must be 1-128 letters, digits or _.:@-');

/** `PUT /v1/budgets/{level}/{subjectId}`: the budget of a tenant (subjectId = the tenant), a team or an agent. */
export const setBudgetSchema = z.strictObject({
  limitMicros: z.string().regex(/^\d{1,16}$/, 'must be a whole number of micro-units as a decimal string'),
  period: z.enum(PERIODS),
  timeZone: z.string().min(1).max(64).optional(),
  hard: z.boolean().optional(),
  thresholds: z.array(z.number().int().min(1).max(1000)).max(10).optional(),
});
