import { PalisadeError, rpcSubject, type Principal } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import type { ApiKeyResolver } from './auth.guard';

/** auth's `{ apiKey }` → the Principal the key stands for (`unauthenticated` for any bad key). */
export const VERIFY_API_KEY = rpcSubject('auth', 'verify-api-key');

const TYPES: ReadonlySet<string> = new Set(['user', 'agent']);

/**
 * API keys verified by the auth service over NATS request-reply (mTLS; NATS permissions
 * say which services may ask): every request asks, so a revoked or expired key is refused
 * at once. A key auth refuses is `unauthenticated`; auth not answering is `unavailable`
 * (never a caller let through). Only people's and agents' keys (service accounts act as
 * agents) are admitted; the key itself is never logged nor kept.
 */
export class NatsApiKeyResolver implements ApiKeyResolver {
  constructor(
    private readonly nats: () => NatsConnection | undefined,
    private readonly timeoutMs = 3000,
  ) {}

  async principalOf(apiKey: string): Promise<Principal> {
    const nc = this.nats();
    if (!nc) throw new PalisadeError('unavailable', 'API keys cannot be verified yet (not connected to the auth service)');
    let answer: Partial<Principal> | undefined;
    try {
      answer = await rpcRequest<Partial<Principal>>(nc, VERIFY_API_KEY, { apiKey }, { timeoutMs: this.timeoutMs });
    } catch (error) {
      const code = error instanceof PalisadeError ? error.code : 'internal';
      if (code === 'unauthenticated' || code === 'validation' || code === 'not_found') throw new PalisadeError('unauthenticated', 'the API key is not valid');
      throw new PalisadeError('unavailable', `the auth service cannot verify the API key now (${code})`);
    }
    if (!answer || !TYPES.has(String(answer.type)) || typeof answer.id !== 'string' || typeof answer.tenantId !== 'string') {
      throw new PalisadeError('unavailable', 'the auth service answered the API key in an unknown shape');
    }
    return answer as Principal;
  }
}
