import { z } from 'zod';
import { password, username } from '../validation';
import { TENANT_ROLES } from '../sessions/token-issuer';

export const registerUserBody = z.strictObject({
  // "<provider>:<name>" is how directory and IdP accounts are named.
  username: username.refine((u) => !u.includes(':'), 'must not contain ":" (reserved for identity-provider accounts)'),
  email: z.email().max(320).optional(),
  password,
  roles: z.array(z.enum(TENANT_ROLES)).max(10).default(['member']),
});
export const changePasswordBody = z.strictObject({ currentPassword: password, newPassword: password });
export const userIdParam = z.string().uuid('must be a user id (UUID)');
export const setRolesBody = z.strictObject({ roles: z.array(z.enum(TENANT_ROLES)).max(10) });
export const platformAuditorBody = z.strictObject({ granted: z.boolean() });
