import { z } from 'zod';

export const SCOPE = /^tool:[a-z0-9][a-z0-9_.-]{0,63}$/;
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, 'must be 1-128 characters: letters, digits, . _ / -');
const value = z.string().min(1, 'must not be empty').max(65536, 'must be at most 65536 characters');

export const createSecretSchema = z.strictObject({
  name,
  value,
  scopes: z
    .array(z.string().regex(SCOPE, 'must be tool:<name>'))
    .max(50)
    .refine((s) => new Set(s).size === s.length, 'must not repeat a scope'),
  rotationDays: z.number().int().min(1).max(3650).optional(),
  overlapSeconds: z.number().int().min(0).max(30 * 86400).optional(),
});

export const rotateSecretSchema = z
  .strictObject({ value: value.optional(), rotator: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/).optional() })
  .refine((b) => (b.value === undefined) !== (b.rotator === undefined), { message: 'give either value or rotator', path: ['value'] });

export const revokeSecretSchema = z.strictObject({ reason: z.string().min(1).max(500) });
export const deleteSecretSchema = z.strictObject({ reason: z.string().min(1).max(500).optional() });

export const listSecretsSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: z.string().regex(/^[0-9a-f-]{36}$/, 'must be a secret id').optional(),
});
