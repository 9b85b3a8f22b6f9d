import { TENANT_ID } from '@palisade/contracts';
import { z } from 'zod';

/** The body of PUT /v1/sandbox-quotas/:tenantId: both quotas, whole numbers (0 allowed: nothing runs). */
export const tenantQuotasBodySchema = z.strictObject({
  maxSandboxes: z.number().int().min(0).max(100_000),
  cpuSeconds: z.number().int().min(0).max(1_000_000_000),
});

/** A tenant id in a path (the contracts' form). */
export const tenantIdSchema = z.string().regex(TENANT_ID, 'must be a tenant id');
