import { Inject, Injectable } from '@nestjs/common';
import { rpcSubject, type Principal } from '@palisade/contracts';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { parse } from '../validation';
import { apiKeyBody } from './api-keys.dto';
import { ApiKeysService } from './api-keys.service';

/** `{ apiKey }` → the Principal the key stands for (`unauthenticated` for any bad key). */
export const VERIFY_API_KEY_SUBJECT = rpcSubject('auth', 'verify-api-key');

/**
 * For the other services (NATS permissions say which may ask): the Principal an API key
 * stands for, over NATS request-reply (queue `auth`).
 */
@Injectable()
export class ApiKeysRpc {
  constructor(@Inject(ApiKeysService) keys: Pick<ApiKeysService, 'verify'>, @Inject(PLATFORM) platform: Platform) {
    platform.answerRequests({
      [VERIFY_API_KEY_SUBJECT]: async (payload): Promise<Principal> => (await keys.verify(parse(apiKeyBody, payload).apiKey)).principal,
    });
  }
}
