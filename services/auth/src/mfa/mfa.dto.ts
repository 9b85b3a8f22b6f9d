import { z } from 'zod';
import { RECOVERY_CODE } from './totp';

const mfaToken = z.string().min(1).max(100);
const code = z.string().regex(/^\d{6}$/, 'must be the 6-digit code of the authenticator');

export const verifyBody = z.union(
  [z.strictObject({ mfaToken, code }), z.strictObject({ mfaToken, recoveryCode: z.string().regex(RECOVERY_CODE, 'must be a recovery code (xxxx-xxxx-xxxx-xxxx)') })],
  { error: 'must be { mfaToken, code } or { mfaToken, recoveryCode }' },
);
export const enrolmentBody = z.strictObject({ enrolmentToken: mfaToken });
export const enrolmentConfirmBody = z.strictObject({ enrolmentToken: mfaToken, code });
export const confirmBody = z.strictObject({ code });
