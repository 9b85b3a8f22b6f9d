import { z } from 'zod';

const sessionId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be a session id (letters, digits, . _ : -)');
const tool = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be a tool name');

export const grantLeaseSchema = z.strictObject({
  secretId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a secret id'),
  sessionId,
  tool,
  ttlSeconds: z.number().int().min(1).max(60, 'must be at most 60').optional(),
  uses: z.number().int().min(1).optional(),
});

export const redeemLeaseSchema = z.strictObject({
  token: z.string().min(1).max(100),
  tenantId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be a tenant id'),
  sessionId,
  tool,
});
