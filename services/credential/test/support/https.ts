import { audienceOf } from '@palisade/auth-verifier';
import { httpsCaller, TestTokenIssuer, type Reply } from '@palisade/testing';

export type { Reply } from '@palisade/testing';

/** One HTTPS call to the credential service on `port` (the one client of @palisade/testing). */
export function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; cert?: string; key?: string } = {},
): Promise<Reply> {
  return httpsCaller(port)(path, { method, ...options });
}

/** Tokens for the credential service, signed as the auth service would (see TestTokenIssuer). */
export const TestIssuer = {
  create: () => TestTokenIssuer.create(audienceOf('credential')),
};
export type TestIssuer = TestTokenIssuer;
