import type { NatsConnection } from 'nats';
import {
  isSealedPersonal,
  MAX_SEAL_BATCH,
  PalisadeError,
  SEAL_PERSONAL_SUBJECT,
  sealPersonalReplySchema,
  type EventEnvelope,
  type Personal,
  type PersonalSealer,
  type SealedPersonal,
  type SealPersonalRequest,
} from '@palisade/contracts';
import { rpcRequest } from './rpc';

export interface NatsPersonalSealerOptions {
  /** The connection, once there is one (a service connects to NATS after PostgreSQL). */
  nats: () => NatsConnection | undefined;
  /** How long the audit service may take to answer one request. */
  timeoutMs: number;
}

/** The one refusal a writer sees, whatever went wrong: a 503, never plaintext stored. */
const UNAVAILABLE = 'personal data cannot be sealed: the audit service is unavailable';

/**
 * Has the audit service seal `personal` (SEAL_PERSONAL_SUBJECT) before events are stored:
 * one request for the events of an append that carry plaintext personal data (a request
 * per MAX_SEAL_BATCH of them), none when there are none. Fails closed: no connection, no
 * answer in time, an error, or an answer that is not one sealed member per event for the
 * same data subject is `unavailable`, so the write fails rather than store plaintext.
 */
export class NatsPersonalSealer implements PersonalSealer {
  constructor(private readonly options: NatsPersonalSealerOptions) {}

  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    const plaintext = events.flatMap((e, index) => (e.personal && !isSealedPersonal(e.personal) ? [{ index, event: e, personal: e.personal }] : []));
    const result = [...events];
    for (let from = 0; from < plaintext.length; from += MAX_SEAL_BATCH) {
      const batch = plaintext.slice(from, from + MAX_SEAL_BATCH);
      const sealed = await this.ask(batch.map(({ event, personal }) => ({ id: event.id, type: event.type, tenantId: event.tenantId, data: event.data, personal })));
      batch.forEach(({ index, event }, i) => (result[index] = { ...event, personal: sealed[i] }));
    }
    return result;
  }

  private async ask(events: Array<SealPersonalRequest['events'][number] & { personal: Personal }>): Promise<SealedPersonal[]> {
    const nc = this.options.nats();
    if (!nc) throw new PalisadeError('unavailable', UNAVAILABLE);
    let answer: unknown;
    try {
      answer = await rpcRequest(nc, SEAL_PERSONAL_SUBJECT, { events }, { timeoutMs: this.options.timeoutMs });
    } catch {
      // the audit service's own refusal is its business (logged there); the writer learns only that it cannot write
      throw new PalisadeError('unavailable', UNAVAILABLE);
    }
    const reply = sealPersonalReplySchema.safeParse(answer);
    if (!reply.success || reply.data.sealed.length !== events.length || reply.data.sealed.some((s, i) => s.subjectId !== events[i].personal.subjectId)) {
      throw new PalisadeError('unavailable', UNAVAILABLE);
    }
    return reply.data.sealed;
  }
}
