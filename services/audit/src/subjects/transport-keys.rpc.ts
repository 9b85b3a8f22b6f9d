import { TRANSPORT_KEYS_SUBJECT, type TransportKeysReply } from '@palisade/contracts';
import type { RpcHandler } from '@palisade/nats';
import type { TransportKeys } from '../keys/transport-keys';

/**
 * TRANSPORT_KEYS_SUBJECT: the public transport keys producers seal `personal` to. Public,
 * so any caller NATS lets ask (deploy/local/nats-requests.txt) gets them; the request
 * carries nothing. Only audit can answer this subject, which is what makes the keys
 * trusted (libs/nats TransportPersonalSealer).
 */
export function transportKeysHandlers(keys: Pick<TransportKeys, 'publicKeys'>): Record<string, RpcHandler> {
  return {
    [TRANSPORT_KEYS_SUBJECT]: async (): Promise<TransportKeysReply> => keys.publicKeys(),
  };
}
