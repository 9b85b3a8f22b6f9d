import { z } from 'zod';
import { audience, password, username } from '../validation';

export const signInBody = z.strictObject({ username, password, audience: audience.optional() });
export const refreshBody = z.strictObject({ refreshToken: z.string().min(1).max(200) });
