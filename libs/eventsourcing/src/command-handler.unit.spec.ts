import { isSealedPersonal, PalisadeError, systemEventContext, type ActorType, type EventEnvelope } from '@palisade/contracts';
import {
  CommandHandler,
  DeciderSpecification,
  envelopeOf,
  InMemoryEventStore,
  streamName,
  type Command,
  type Decider,
  type DomainEvent,
  type EventStore,
  type ExpectedVersion,
  type Transaction,
} from './index';

// A small aggregate to exercise the machinery: a budget that can be raised and spent.
type BudgetEvent =
  | DomainEvent<'billing.budget.opened', { limit: number }>
  | DomainEvent<'billing.budget.spent', { amount: number }>;
type BudgetCommand =
  | Command<'open', { limit: number }>
  | Command<'spend', { amount: number }>;
interface Budget {
  open: boolean;
  remaining: number;
}

const budget: Decider<Budget, BudgetCommand, BudgetEvent> = {
  initialState: () => ({ open: false, remaining: 0 }),
  decide(command, state) {
    switch (command.type) {
      case 'open':
        if (state.open) throw new PalisadeError('illegal_state', 'budget already open');
        return [{ type: 'billing.budget.opened', data: { limit: command.data.limit } }];
      case 'spend':
        if (!state.open) throw new PalisadeError('not_found', 'budget not found');
        if (command.data.amount > state.remaining) throw new PalisadeError('rate_limited', 'over budget');
        return [{ type: 'billing.budget.spent', data: { amount: command.data.amount } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'billing.budget.opened':
        return { open: true, remaining: event.data.limit };
      case 'billing.budget.spent':
        return { ...state, remaining: state.remaining - event.data.amount };
    }
  },
};

const meta = (type: ActorType = 'user') => ({
  tenantId: 'acme',
  actor: { type, id: 'u-1' },
  now: new Date('2026-11-22T10:00:00.000Z'),
});
const open = (limit: number): BudgetCommand => ({ type: 'open', data: { limit }, metadata: meta() });
const spend = (amount: number): BudgetCommand => ({ type: 'spend', data: { amount }, metadata: meta() });

describe('DeciderSpecification', () => {
  const spec = DeciderSpecification.for(budget);

  it('given no events, opening emits opened', () => {
    spec([]).when(open(10)).then([{ type: 'billing.budget.opened', data: { limit: 10 } }]);
  });

  it('refuses spending over the remaining amount', () => {
    spec([{ type: 'billing.budget.opened', data: { limit: 10 } }, { type: 'billing.budget.spent', data: { amount: 8 } }])
      .when(spend(3))
      .thenThrows('rate_limited', 'over budget');
  });

  it('fails when the decider produces other events than expected', () => {
    expect(() => spec([]).when(open(10)).then([{ type: 'billing.budget.opened', data: { limit: 11 } }])).toThrow(
      /expected/,
    );
  });
});

/** The first read is stale (one event short), as if another writer committed right after it. */
function staleFirstRead(inner: InMemoryEventStore): EventStore & { reads(): number } {
  let reads = 0;
  return {
    reads: () => reads,
    inTransaction: (work) => inner.inTransaction(work),
    async readStream(tx, id) {
      const fresh = await inner.readStream(tx, id);
      if (reads++ > 0) return fresh;
      return { version: fresh.version - 1, events: fresh.events.slice(0, -1) };
    },
    appendToStream: (tx, id, events, expected) => inner.appendToStream(tx, id, events, expected),
  };
}

describe('CommandHandler', () => {
  const ctx = systemEventContext('billing');

  it('appends enveloped events with tenant, actor and the command time', async () => {
    const store = new InMemoryEventStore();
    const handler = new CommandHandler(store, budget, { eventContext: ctx });
    const result = await handler.handle(streamName('budget', 'b1'), open(10));
    expect(result.version).toBe(1);
    expect(result.state).toEqual({ open: true, remaining: 10 });
    const [stored] = store.all();
    expect(stored.event).toMatchObject({
      type: 'billing.budget.opened',
      source: 'billing',
      tenantId: 'acme',
      actor: { type: 'user', id: 'u-1' },
      occurredAt: '2026-11-22T10:00:00.000Z',
      data: { limit: 10 },
    });
  });

  it('decides again on a concurrency conflict, with the newer state', async () => {
    const inner = new InMemoryEventStore();
    await new CommandHandler(inner, budget, { eventContext: ctx }).handle('budget-b2', open(10));
    await new CommandHandler(inner, budget, { eventContext: ctx }).handle('budget-b2', spend(6));
    const racing = staleFirstRead(inner);
    const handler = new CommandHandler(racing, budget, { eventContext: ctx });
    await expect(handler.handle('budget-b2', spend(5))).rejects.toMatchObject({ code: 'rate_limited' });
    expect(racing.reads()).toBe(2);
    expect(inner.all()).toHaveLength(2);
  });

  it('does not retry when the caller named the version (If-Match)', async () => {
    const store = new InMemoryEventStore();
    const handler = new CommandHandler(store, budget, { eventContext: ctx });
    await handler.handle('budget-b3', open(10));
    await expect(handler.handle('budget-b3', spend(1), 0)).rejects.toMatchObject({ code: 'conflict' });
    expect(store.all()).toHaveLength(1);
  });

  it('runs inline projections on the events they handle, and rolls back with the append', async () => {
    const store = new InMemoryEventStore();
    const seen: string[] = [];
    const handler = new CommandHandler(store, budget, {
      eventContext: ctx,
      projections: [
        {
          name: 'spent',
          handles: ['billing.budget.spent'],
          async apply(_tx, events) {
            seen.push(...events.map((e) => e.type));
            throw new Error('projection failed');
          },
        },
      ],
    });
    await handler.handle('budget-b4', open(10));
    await expect(handler.handle('budget-b4', spend(1))).rejects.toThrow('projection failed');
    expect(seen).toEqual(['billing.budget.spent']);
    expect(store.all()).toHaveLength(1);
  });

  describe('hooks inside the transaction', () => {
    it('beforeDecide runs first, in the same transaction; its refusal appends nothing and is not retried', async () => {
      const store = new InMemoryEventStore();
      const handler = new CommandHandler(store, budget, { eventContext: ctx });
      const order: string[] = [];
      const tracing: EventStore = {
        inTransaction: (work) => store.inTransaction((tx) => work(tx)),
        readStream: async (tx, id) => (order.push('read'), store.readStream(tx, id)),
        appendToStream: async (tx, id, events, expected) => (order.push('append'), store.appendToStream(tx, id, events, expected)),
      };
      let seenTx: unknown;
      await new CommandHandler(tracing, budget, { eventContext: ctx }).handle('budget-h1', open(10), {
        beforeDecide: async (tx) => {
          seenTx = tx;
          order.push('before');
        },
        alsoInTransaction: async (tx) => {
          expect(tx).toBe(seenTx);
          order.push('also');
        },
      });
      expect(order).toEqual(['before', 'read', 'append', 'also']);

      let calls = 0;
      await expect(
        handler.handle('budget-h1', spend(1), {
          beforeDecide: async () => {
            calls++;
            throw new PalisadeError('illegal_state', 'the key changed');
          },
        }),
      ).rejects.toMatchObject({ code: 'illegal_state' });
      expect(calls).toBe(1);
      expect(store.all()).toHaveLength(1);
    });

    it("lockStream takes the stream's lock in the transaction after beforeDecide and before the read", async () => {
      const inner = new InMemoryEventStore();
      await new CommandHandler(inner, budget, { eventContext: ctx }).handle('budget-l1', open(10));
      const order: string[] = [];
      const reading: EventStore = {
        inTransaction: (work) => inner.inTransaction(work),
        readStream: async (tx, id) => (order.push('read'), inner.readStream(tx, id)),
        appendToStream: (tx, id, events, expected) => inner.appendToStream(tx, id, events, expected),
      };
      const handler = new CommandHandler(reading, budget, { eventContext: ctx, lockStream: async (_tx, id) => void order.push(`lock ${id}`) });
      await handler.handle('budget-l1', spend(2), { beforeDecide: async () => void order.push('before') });
      expect(order).toEqual(['before', 'lock budget-l1', 'read']);
    });

    it('beforeDecide runs again on each retry after a conflict', async () => {
      const inner = new InMemoryEventStore();
      await new CommandHandler(inner, budget, { eventContext: ctx }).handle('budget-h2', open(10));
      await new CommandHandler(inner, budget, { eventContext: ctx }).handle('budget-h2', spend(6));
      let before = 0;
      const result = await new CommandHandler(staleFirstRead(inner), budget, { eventContext: ctx }).handle('budget-h2', spend(3), { beforeDecide: async () => void before++ });
      expect(before).toBe(2);
      expect(result).toMatchObject({ version: 3, state: { remaining: 1 } });
    });

    it('alsoInTransaction and projections see the events and the stream version after the append; a failure rolls both back', async () => {
      const store = new InMemoryEventStore();
      const seen: Array<[string, string[], number]> = [];
      const handler = new CommandHandler(store, budget, {
        eventContext: ctx,
        projections: [{ name: 'all', handles: ['billing.budget.opened', 'billing.budget.spent'], apply: async (_tx, events, v) => void seen.push(['projection', events.map((e) => e.type), v]) }],
      });
      await handler.handle('budget-h3', open(10), { alsoInTransaction: async (_tx, events, v) => void seen.push(['also', events.map((e) => e.type), v]) });
      await handler.handle('budget-h3', spend(2), { expectedVersion: 1, alsoInTransaction: async (_tx, events, v) => void seen.push(['also', events.map((e) => e.type), v]) });
      expect(seen).toEqual([
        ['projection', ['billing.budget.opened'], 1],
        ['also', ['billing.budget.opened'], 1],
        ['projection', ['billing.budget.spent'], 2],
        ['also', ['billing.budget.spent'], 2],
      ]);
      await expect(
        handler.handle('budget-h3', spend(1), {
          alsoInTransaction: async () => {
            throw new Error('insert failed');
          },
        }),
      ).rejects.toThrow('insert failed');
      expect(store.all()).toHaveLength(2);
    });

    it('the positional form (expectedVersion, alsoInTransaction) still works', async () => {
      const store = new InMemoryEventStore();
      const handler = new CommandHandler(store, budget, { eventContext: ctx });
      const versions: number[] = [];
      await handler.handle('budget-h4', open(10), 0, async (_tx, _events, v) => void versions.push(v));
      await expect(handler.handle('budget-h4', spend(1), 0)).rejects.toMatchObject({ code: 'conflict' });
      expect(versions).toEqual([1]);
    });
  });

  it('keeps personal data apart in the envelope (it is not dropped)', async () => {
    const store = new InMemoryEventStore();
    const withPersonal: Decider<Budget, BudgetCommand, BudgetEvent> = {
      ...budget,
      decide: (command, state) => budget.decide(command, state).map((e) => ({ ...e, personal: { subjectId: 'u-1', data: { email: 'a@example.com' } } })),
    };
    await new CommandHandler(store, withPersonal, { eventContext: ctx }).handle('budget-p1', open(10));
    expect(store.all()[0].event.personal).toEqual({ subjectId: 'u-1', data: { email: 'a@example.com' } });
    expect(envelopeOf(ctx, meta(), { type: 'billing.budget.spent', data: { amount: 1 } })).not.toHaveProperty('personal');
  });

  describe('personal data sealed outside the transaction (a slow sealer holds no connection)', () => {
    const SEALED = { keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVk' };
    /** Seals like PgEventStore (also inside an append, if given plaintext) and records where each sealing ran. */
    class SealingStore extends InMemoryEventStore {
      inTransactionNow = false;
      sealings: Array<{ inTransaction: boolean; ids: string[] }> = [];
      beforeNextSeal?: () => Promise<void>;
      failWith?: Error;

      override async inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
        return super.inTransaction(async (tx) => {
          this.inTransactionNow = true;
          try {
            return await work(tx);
          } finally {
            this.inTransactionNow = false;
          }
        });
      }

      async sealPersonal(events: readonly EventEnvelope[]): Promise<readonly EventEnvelope[]> {
        if (!events.some((e) => e.personal && !isSealedPersonal(e.personal))) return events;
        this.sealings.push({ inTransaction: this.inTransactionNow, ids: events.map((e) => e.id) });
        const hook = this.beforeNextSeal;
        this.beforeNextSeal = undefined;
        if (hook) await hook();
        if (this.failWith) throw this.failWith;
        return events.map((e) => (e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: { subjectId: e.personal.subjectId, ...SEALED } } : e));
      }

      override async appendToStream(tx: Transaction, streamId: string, events: readonly EventEnvelope[], expected: ExpectedVersion) {
        return super.appendToStream(tx, streamId, await this.sealPersonal(events), expected);
      }
    }
    const withPersonal: Decider<Budget, BudgetCommand, BudgetEvent> = {
      ...budget,
      decide: (command, state) => budget.decide(command, state).map((e) => ({ ...e, personal: { subjectId: 'u-1', data: { email: 'a@example.com' } } })),
    };

    it('seals before the transaction, stores only the sealed form and answers the plaintext events with the same ids', async () => {
      const store = new SealingStore();
      const projected: EventEnvelope[] = [];
      const projection = { name: 'p', handles: ['billing.budget.opened'], apply: async (_tx: Transaction, events: readonly EventEnvelope[]) => void projected.push(...events) };
      const result = await new CommandHandler(store, withPersonal, { eventContext: ctx, projections: [projection] }).handle('budget-s1', open(10));
      expect(store.sealings).toEqual([{ inTransaction: false, ids: [result.events[0].id] }]);
      expect(store.all()[0].event).toMatchObject({ id: result.events[0].id, personal: { subjectId: 'u-1', ...SEALED } });
      expect(result.events[0].personal).toEqual({ subjectId: 'u-1', data: { email: 'a@example.com' } });
      expect(projected.map((e) => [e.id, e.personal])).toEqual([[result.events[0].id, { subjectId: 'u-1', data: { email: 'a@example.com' } }]]);
      expect(result.version).toBe(1);
    });

    it('decides again when the stream moved while sealing, and stores what the new decision sealed', async () => {
      const store = new SealingStore();
      const handler = new CommandHandler(store, withPersonal, { eventContext: ctx });
      await handler.handle('budget-s2', open(10));
      store.beforeNextSeal = () => handler.handle('budget-s2', spend(7)).then(() => undefined);
      await expect(handler.handle('budget-s2', spend(5))).rejects.toMatchObject({ code: 'rate_limited' });
      expect(store.all().map((s) => s.event.type)).toEqual(['billing.budget.opened', 'billing.budget.spent']);
      await expect(handler.handle('budget-s2', spend(3))).resolves.toMatchObject({ version: 3, state: { remaining: 0 } });
      expect(store.sealings.every((s) => !s.inTransaction)).toBe(true);
      expect(store.all().every((s) => isSealedPersonal(s.event.personal!))).toBe(true);
    });

    it('fails closed: a sealer that fails stores nothing and its error reaches the caller', async () => {
      const store = new SealingStore();
      store.failWith = new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable');
      await expect(new CommandHandler(store, withPersonal, { eventContext: ctx }).handle('budget-s3', open(10))).rejects.toMatchObject({ code: 'unavailable' });
      expect(store.all()).toEqual([]);
    });

    it('events without personal data are appended in one pass, never sent to the sealer', async () => {
      const store = new SealingStore();
      await new CommandHandler(store, budget, { eventContext: ctx }).handle('budget-s4', open(10));
      expect(store.sealings).toEqual([]);
      expect(store.all()).toHaveLength(1);
    });
  });

  it('with tenantScoped, a stream holding another tenant’s events is not found, and nothing is appended', async () => {
    const store = new InMemoryEventStore();
    await new CommandHandler(store, budget, { eventContext: ctx }).handle('budget-t1', open(10));
    const other = { ...spend(1), metadata: { ...meta(), tenantId: 'globex' } };
    await expect(new CommandHandler(store, budget, { eventContext: ctx, tenantScoped: true }).handle('budget-t1', other)).rejects.toMatchObject({ code: 'not_found' });
    expect(store.all()).toHaveLength(1);
    // Without the option the handler does not look at tenants (streams shared across tenants stay possible).
    await expect(new CommandHandler(store, budget, { eventContext: ctx }).handle('budget-t1', other)).resolves.toMatchObject({ version: 2 });
  });
});
