import { ConcurrencyError, isSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type PersonalSealer, type Principal } from '@palisade/contracts';
import { InMemoryEventStore, type Transaction } from '@palisade/eventsourcing';
import { ModelCallsService } from './model-calls.service';
import type { ModelCallRecorded, UsageRecorded } from './model-calls.events';

const principal: Principal = { type: 'agent', id: 'weather-bot', tenantId: 'acme', actingFor: 'alice' };
const call = (requestId: string): ModelCallRecorded => ({
  requestId,
  api: 'openai',
  operation: 'chat',
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

const usage = (requestId: string): UsageRecorded => ({ requestId, agentId: 'weather-bot', actualMicros: '10', model: 'gpt-test', usage: [{ kind: 'input_tokens', quantity: 1 }] });

class CountingSealer implements PersonalSealer {
  requests = 0;
  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    this.requests++;
    return events.map((e) =>
      e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: { subjectId: e.personal.subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVk' } } : e,
    );
  }
}

/** The in-memory store with the group append of PgEventStore: each group one call, every stream new. */
class GroupStore extends InMemoryEventStore {
  groups: string[][] = [];
  async appendToNewStreams(tx: Transaction, appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void> {
    this.groups.push(appends.map((a) => a.streamId));
    for (const a of appends) await this.appendToStream(tx, a.streamId, [a.event], 0);
  }
}

describe('ModelCallsService group commit', () => {
  const now = new Date('2026-12-03T10:00:00.000Z');

  it('appends a group of calls and usages, each to its own new stream, in one group append when the store offers it', async () => {
    const store = new GroupStore();
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { maxBatch: 10 });
    await Promise.all(['r-1', 'r-2'].flatMap((id) => [calls.record(principal, call(id), { prompt: 'hi' }, now), calls.recordUsage(principal, usage(id), now)]));
    expect(store.groups).toEqual([['model-call-r-1', 'usage-r-1', 'model-call-r-2', 'usage-r-2']]);
    expect(store.all().map((e) => [e.streamId, e.version])).toEqual([['model-call-r-1', 1], ['usage-r-1', 1], ['model-call-r-2', 1], ['usage-r-2', 1]]);
  });

  it('runs up to maxConcurrent commits at once, and flush (shutdown) waits for the ones under way and the rest queued', async () => {
    const gates: Array<() => void> = [];
    class SlowStore extends GroupStore {
      override inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
        return new Promise<void>((release) => gates.push(release)).then(() => super.inTransaction(work));
      }
    }
    const store = new SlowStore();
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { maxBatch: 2, maxConcurrent: 2 });
    const written = ['r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6', 'r-7'].map((id) => calls.record(principal, call(id), undefined, now));
    await new Promise((r) => setImmediate(r));
    expect(gates).toHaveLength(2);
    let flushed = false;
    const flushing = calls.flush().then(() => (flushed = true));
    for (let i = 0; i < 10 && !flushed; i++) {
      gates.splice(0).forEach((release) => release());
      await new Promise((r) => setImmediate(r));
    }
    await flushing;
    await Promise.all(written);
    expect(store.all()).toHaveLength(7);
    expect(store.groups.map((g) => g.length)).toEqual([2, 2, 2, 1]);
  });

  it('a request id recorded twice fails its group (each stream is new): the callers are told', async () => {
    const store = new GroupStore();
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { maxBatch: 10 });
    await calls.record(principal, call('r-1'), undefined, now);
    await expect(calls.record(principal, call('r-1'), undefined, now)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(store.all()).toHaveLength(1);
  });
});

describe('ModelCallsService sealing the prompts (issue 10)', () => {
  const now = new Date('2026-12-03T10:00:00.000Z');

  it('seals a group of calls in one request before it is appended: no prompt is stored in plaintext', async () => {
    const store = new InMemoryEventStore();
    const sealer = new CountingSealer();
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { maxBatch: 10 }, sealer);
    await Promise.all(['r-1', 'r-2', 'r-3'].map((id) => calls.record(principal, call(id), { prompt: `hello from alice ${id}`, response: 'hi' }, now)));

    expect(sealer.requests).toBe(1);
    const stored = store.all().map((s) => s.event);
    expect(stored).toHaveLength(3);
    for (const e of stored) expect(e.personal).toMatchObject({ subjectId: 'alice', alg: 'A256GCM' });
    expect(JSON.stringify(stored)).not.toContain('hello from alice');
  });

  it('never stores a prompt in plaintext: when the texts cannot be sealed, the records (and the usage sharing their group) are kept without them, and it says so', async () => {
    const store = new InMemoryEventStore();
    const down: PersonalSealer = { seal: () => Promise.reject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable')) };
    const withheld: number[] = [];
    const calls = new ModelCallsService(store, systemEventContext('llm-router'), { maxBatch: 10 }, down, (n) => withheld.push(n));
    await Promise.all([calls.record(principal, call('r-1'), { prompt: 'hello from alice' }, now), calls.recordUsage(principal, usage('r-1'), now)]);
    const stored = store.all().map((s) => s.event);
    expect(stored.map((e) => e.type).sort()).toEqual(['llm-router.model-call.recorded', 'llm-router.usage.recorded']);
    expect(stored.every((e) => e.personal === undefined)).toBe(true);
    expect(JSON.stringify(stored)).not.toContain('hello from alice');
    expect(withheld).toEqual([1]);
  });
});
