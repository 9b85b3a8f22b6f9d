import { PalisadeError, SEAL_PERSONAL_SUBJECT, sealPersonalRequestSchema, serviceOfEventType, type SealPersonalReply, type SealPersonalRequest, type ServiceName } from '@palisade/contracts';
import { serveRpc, type RpcHandler, type RpcServer } from '@palisade/nats';
import type { Platform } from '@palisade/service-kit';
import { parse } from '../validation';
import type { TransportKeys } from '../keys/transport-keys';
import type { PersonalData } from './personal-data';
import { transportKeysHandlers } from './transport-keys.rpc';

/** Bad events named in a refusal at most (the rest are counted). */
const NAMED_MAX = 5;

/**
 * A service may have only its own events sealed (an event's type names its service):
 * else it could have personal data sealed under any subject's key for another service's
 * event ids. NATS permissions (deploy/local/nats-requests.txt) say who may ask at all.
 */
export function ownEventsOf(caller: ServiceName | undefined, request: SealPersonalRequest): SealPersonalRequest['events'] {
  if (!caller) throw new PalisadeError('forbidden', 'sealing personal data needs a calling service (a reply inbox of _INBOX.<service>.…)');
  const foreign = request.events.flatMap((e, i) => (serviceOfEventType(e.type) === caller ? [] : [`events[${i}] (${e.type})`]));
  if (foreign.length === 0) return request.events;
  const named = foreign.slice(0, NAMED_MAX).join(', ') + (foreign.length > NAMED_MAX ? ` and ${foreign.length - NAMED_MAX} more` : '');
  throw new PalisadeError('forbidden', `${caller} may have only its own events sealed (type ${caller}.…): ${named}`);
}

/** The method: validate, check the caller, call one method. */
export function sealPersonalHandlers(personal: Pick<PersonalData, 'sealFor'>): Record<string, RpcHandler> {
  return {
    [SEAL_PERSONAL_SUBJECT]: async (payload, _s, caller): Promise<SealPersonalReply> => ({
      sealed: await personal.sealFor(ownEventsOf(caller, parse(sealPersonalRequestSchema, payload))),
    }),
  };
}

/**
 * SEAL_PERSONAL_SUBJECT over NATS request-reply: a producer has the `personal` member of
 * its events sealed before it stores them; and, with `transportKeys`,
 * TRANSPORT_KEYS_SUBJECT: the public keys producers seal to themselves, without the
 * former's round trip (the former is then their fallback). Any audit instance answers
 * (the keys are in PostgreSQL), not only the writer.
 */
export class SealPersonalRpc {
  private server: RpcServer | undefined;

  constructor(platform: Platform, personal: Pick<PersonalData, 'sealFor'>, transportKeys?: Pick<TransportKeys, 'publicKeys'>) {
    platform.afterConnect(async (p) => {
      this.server ??= serveRpc(p.nats!, {
        service: 'audit',
        tracer: p.options.tracer,
        logger: p.logger,
        handlers: { ...sealPersonalHandlers(personal), ...(transportKeys ? transportKeysHandlers(transportKeys) : {}) },
      });
      await p.nats!.flush();
    });
    platform.beforeClose(async () => {
      await this.server?.stop();
      this.server = undefined;
    });
  }
}
