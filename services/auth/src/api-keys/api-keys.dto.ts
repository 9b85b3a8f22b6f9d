import { z } from 'zod';
import { MAX_API_KEY_DAYS, MAX_OVERLAP_SEC } from './api-keys.decider';

const scope = z.string().regex(/^[a-z][a-z0-9:._-]{0,63}$/, 'must be a scope such as auth:admin');

export const createApiKeyBody = z.strictObject({
  name: z.string().min(1).max(100),
  scopes: z.array(scope).max(32).default([]),
  expiresInDays: z.number().int().min(1).max(MAX_API_KEY_DAYS).default(90),
  serviceAccount: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a service account name: lower case letters, digits, "-"').optional(),
});
export const rotateApiKeyBody = z.strictObject({ overlapSec: z.number().int().min(0).max(MAX_OVERLAP_SEC).default(86400) });
export const apiKeyIdParam = z.string().regex(/^[0-9a-f]{24}$/, 'must be an API key id');
/** The key itself: its shape is checked by the service (401 for anything that is not a live key). */
export const apiKeyBody = z.strictObject({ apiKey: z.string().min(1).max(200) });
