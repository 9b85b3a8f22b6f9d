import { z } from 'zod';
import { PalisadeError, TENANT_ID, type Principal } from '@palisade/contracts';
import { MAX_PASSWORD_BYTES } from './crypto/password-hasher';

/** Parse input at the edge; a bad field is a 400 naming it. */
export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  throw new PalisadeError('validation', problems.join('; '), problems);
}

export const tenantId = z.string().regex(TENANT_ID, 'must be a tenant id: letters, digits, "_", ".", "-", at most 64');
export const username = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');
export const password = z.string().min(1).refine((p) => Buffer.byteLength(p) <= MAX_PASSWORD_BYTES, `must be at most ${MAX_PASSWORD_BYTES} bytes`);
export const audience = z.array(z.string().regex(/^palisade:[a-z-]+$/, 'must be palisade:<service>')).min(1).max(7);

/** OpenAPI schema of a zod schema, so the docs say what the validation does. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return json;
}

/** The caller must hold this scope (granted by a role); otherwise 403. */
export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes?.includes(scope)) throw new PalisadeError('forbidden', `scope ${scope} is required`);
}

/** If-Match: "<version>" → version; absent → undefined. */
export function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(header.trim());
  if (!m) throw new PalisadeError('validation', 'If-Match: must be a version such as "3"');
  return Number(m[1]);
}
