import { z } from 'zod';
import { uuid } from '../validation';

export const tenantId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be a tenant id');
/** e.g. auth's `idp.<provider>`. */
export const serviceSecretName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'must be 1-128 characters: lower case letters, digits, . _ -');
export const serviceSecretId = uuid;

/** `palisade.rpc.credential.service-secret-put`: create the named secret under the caller's scope, or rotate it. */
export const putServiceSecretRequest = z.strictObject({
  tenantId,
  name: serviceSecretName,
  value: z.string().min(1, 'must not be empty').max(65536, 'must be at most 65536 characters'),
});

/** `palisade.rpc.credential.service-secret-read`: the current value. */
export const readServiceSecretRequest = z.strictObject({
  tenantId,
  secretId: serviceSecretId,
  /** Why it is read, recorded in `credential.secret.read` (auth: `idp-sign-in`). */
  purpose: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be a purpose such as idp-sign-in'),
});

/** `palisade.rpc.credential.service-secret-delete`: crypto-shred the secret. */
export const deleteServiceSecretRequest = z.strictObject({ tenantId, secretId: serviceSecretId });
