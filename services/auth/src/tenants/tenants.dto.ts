import { z } from 'zod';
import { registerUserBody } from '../users/users.dto';
import { tenantId } from '../validation';

export const passwordPolicyBody = z.strictObject({
  minLength: z.number().int().min(8).max(256),
  minClasses: z.number().int().min(1).max(4),
  historySize: z.number().int().min(0).max(24),
  maxAgeDays: z.number().int().min(0).max(3650),
});
export const mfaBody = z.strictObject({ required: z.boolean() });

/** POST /v1/tenants (platform operators): the tenant and its first administrator. */
export const provisionTenantBody = z.strictObject({
  tenantId,
  name: z.string().min(1).max(200),
  admin: registerUserBody.omit({ roles: true }),
});
