import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '@palisade/contracts';
import { PLATFORM, VERIFY_API_KEY, type Platform } from '@palisade/service-kit';
import { parse } from '../validation';
import { apiKeyBody } from './api-keys.dto';
import { ApiKeysService } from './api-keys.service';

/**
 * For the other services (NATS permissions say which may ask): the Principal an API key
 * stands for, over NATS request-reply (queue `auth`).
 */
@Injectable()
export class ApiKeysRpc {
  constructor(@Inject(ApiKeysService) keys: Pick<ApiKeysService, 'verify'>, @Inject(PLATFORM) platform: Platform) {
    platform.answerRequests({
      [VERIFY_API_KEY]: async (payload): Promise<Principal> => (await keys.verify(parse(apiKeyBody, payload).apiKey)).principal,
    });
  }
}
