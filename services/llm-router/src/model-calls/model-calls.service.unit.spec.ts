import { isSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type PersonalSealer, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import { ModelCallsService } from './model-calls.service';
import type { ModelCallRecorded } from './model-calls.events';

const principal: Principal = { type: 'agent', id: 'weather-bot', tenantId: 'acme', actingFor: 'alice' };
const call = (requestId: string): ModelCallRecorded => ({
  requestId,
  api: 'openai',
  agentId: 'weather-bot',
  userId: 'alice',
  teams: [],
  requestedModel: 'gpt-test',
  classification: 'internal',
  outcome: 'served',
  streamed: false,
  attempts: 1,
  inputTokens: 1,
  outputTokens: 1,
  reservedMicros: 0,
  costMicros: 0,
  estimated: false,
  latencyMs: 1,
  guards: {} as ModelCallRecorded['guards'],
});

class CountingSealer implements PersonalSealer {
  requests = 0;
  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    this.requests++;
    return events.map((e) =>
      e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: { subjectId: e.personal.subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVk' } } : e,
    );
  }
}

describe('ModelCallsService sealing the prompts (issue 10)', () => {
  const now = new Date('2026-12-03T10:00:00.000Z');

  it('seals a group of calls in one request before it is appended: no prompt is stored in plaintext', async () => {
    const store = new InMemoryEventStore();
    const sealer = new CountingSealer();
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { lingerMs: 5, maxBatch: 10 }, sealer);
    await Promise.all(['r-1', 'r-2', 'r-3'].map((id) => calls.record(principal, call(id), { prompt: `hello from alice ${id}`, response: 'hi' }, now)));

    expect(sealer.requests).toBe(1);
    const stored = store.all().map((s) => s.event);
    expect(stored).toHaveLength(3);
    for (const e of stored) expect(e.personal).toMatchObject({ subjectId: 'alice', alg: 'A256GCM' });
    expect(JSON.stringify(stored)).not.toContain('hello from alice');
  });

  it('fails closed: when the prompts cannot be sealed, the group is not stored and each call learns why', async () => {
    const store = new InMemoryEventStore();
    const down: PersonalSealer = { seal: () => Promise.reject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable')) };
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { lingerMs: 5, maxBatch: 10 }, down);
    await expect(calls.record(principal, call('r-1'), { prompt: 'hello' }, now)).rejects.toMatchObject({ code: 'unavailable' });
    expect(store.all()).toEqual([]);
  });
});
