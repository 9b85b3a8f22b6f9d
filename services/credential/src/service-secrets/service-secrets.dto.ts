import { z } from 'zod';
import { uuid } from '../validation';

export const tenantIdParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be a tenant id');
/** One path segment: no "/" (e.g. auth's `idp.<provider>`). */
export const serviceSecretName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'must be 1-128 characters: lower case letters, digits, . _ -');
export const serviceSecretId = uuid;

export const putServiceSecretSchema = z.strictObject({
  value: z.string().min(1, 'must not be empty').max(65536, 'must be at most 65536 characters'),
});

export const readServiceSecretSchema = z.strictObject({
  /** Why it is read, recorded in `credential.secret.read` (auth: `idp-sign-in`). */
  purpose: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be a purpose such as idp-sign-in'),
});
