import { z } from 'zod';

export const passwordPolicyBody = z.strictObject({
  minLength: z.number().int().min(8).max(256),
  minClasses: z.number().int().min(1).max(4),
  historySize: z.number().int().min(0).max(24),
  maxAgeDays: z.number().int().min(0).max(3650),
});
export const mfaBody = z.strictObject({ required: z.boolean() });
