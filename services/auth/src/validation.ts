import { z } from 'zod';
import { PalisadeError, TENANT_ID, type Principal } from '@palisade/contracts';
import { MAX_PASSWORD_BYTES } from './crypto/password-hasher';

// The one parse, OpenAPI schema and If-Match of every service (@palisade/service-kit).
export { ifMatch as ifMatchVersion, openApiSchema, parse } from '@palisade/service-kit';

export const tenantId = z.string().regex(TENANT_ID, 'must be a tenant id: letters, digits, "_", ".", "-", at most 64');
export const username = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');
export const password = z.string().min(1).refine((p) => Buffer.byteLength(p) <= MAX_PASSWORD_BYTES, `must be at most ${MAX_PASSWORD_BYTES} bytes`);
export const audience = z.array(z.string().regex(/^palisade:[a-z-]+$/, 'must be palisade:<service>')).min(1).max(7);

/** The caller must hold this scope (granted by a role); otherwise 403. */
export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes?.includes(scope)) throw new PalisadeError('forbidden', `scope ${scope} is required`);
}

