import { systemEventContext, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import { parse } from '@palisade/service-kit';
import { guardPolicyDecider } from './guard-policy.decider';
import { guardPolicySchema } from './guard-policy.dto';
import { DEFAULT_GUARD_POLICY, piiActionOf } from './guard-policy.events';
import { GuardPolicyService } from './guard-policy.service';
import { TenantChanges } from '../tenant-changes';

const admin: Principal = { type: 'user', id: 'root', tenantId: 'acme', scopes: ['llm-router:admin'] };
const tenantAdmin: Principal = { type: 'user', id: 'boss', tenantId: 'acme', scopes: ['auth:admin'] };
const otherAdmin: Principal = { type: 'user', id: 'eve', tenantId: 'globex', scopes: ['llm-router:admin'] };
const agent: Principal = { type: 'agent', id: 'bot', tenantId: 'acme', scopes: ['llm-router:admin'] };
const person: Principal = { type: 'user', id: 'bob', tenantId: 'acme' };
/** The processes of one router as siblings see them: a broadcast runs every process's handlers (here, in one). */
function processesOfOneRouter(): ConstructorParameters<typeof TenantChanges>[0] {
  const handlers: Array<(payload: unknown) => void> = [];
  return {
    on: (_topic, handler) => void handlers.push(handler),
    broadcast: async (_topic, payload) => (handlers.forEach((handler) => handler(payload)), { missed: 0 }),
  };
}
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'root' }, now: new Date() };

describe('guard policy: decider and validation', () => {
  it('masks everything by default and decides a change once', () => {
    expect(piiActionOf(DEFAULT_GUARD_POLICY, 'public', 'card')).toBe('mask');
    const policy = parse(guardPolicySchema, { pii: { public: { card: 'block' }, confidential: { email: 'allow' } }, injection: 'block' });
    expect(policy).toEqual({ pii: { public: { card: 'block' }, confidential: { email: 'allow' } }, injection: 'block', toolCalls: 'remove' });
    expect(piiActionOf(policy, 'public', 'card')).toBe('block');
    expect(piiActionOf(policy, 'internal', 'card')).toBe('mask');
    const [event] = guardPolicyDecider.decide({ type: 'configure-guard-policy', data: policy, metadata }, guardPolicyDecider.initialState());
    expect(event.type).toBe('llm-router.guard-policy.configured');
    expect(guardPolicyDecider.decide({ type: 'configure-guard-policy', data: policy, metadata }, guardPolicyDecider.evolve(guardPolicyDecider.initialState(), event))).toEqual([]);
    expect(guardPolicyDecider.decide({ type: 'configure-guard-policy', data: parse(guardPolicySchema, {}), metadata }, guardPolicyDecider.initialState())).toEqual([]);
  });

  it('refuses unknown classes, entity types, actions and fields by name', () => {
    expect(() => parse(guardPolicySchema, { pii: { secret: { card: 'mask' } } })).toThrow(/pii/);
    expect(() => parse(guardPolicySchema, { pii: { public: { passport: 'mask' } } })).toThrow(/pii\.public/);
    expect(() => parse(guardPolicySchema, { pii: { public: { card: 'encrypt' } } })).toThrow(/pii\.public\.card/);
    expect(() => parse(guardPolicySchema, { injection: 'ignore' })).toThrow(/injection/);
    expect(() => parse(guardPolicySchema, { toolCalls: 'allow' })).toThrow(/toolCalls/);
    expect(() => parse(guardPolicySchema, { zeroRetention: true })).toThrow(/zeroRetention|unrecognized/i);
  });

  it('keeps classification rules in their order and refuses bad ones by name', () => {
    const agentId = '0190c3a0-0000-7000-8000-000000000001';
    const policy = parse(guardPolicySchema, { classificationRules: [{ atLeast: 'restricted', model: 'gpt-4o', team: 'finance' }, { agent: agentId, atLeast: 'confidential' }] });
    expect(policy.classificationRules).toEqual([{ team: 'finance', model: 'gpt-4o', atLeast: 'restricted' }, { agent: agentId, atLeast: 'confidential' }]);
    expect(parse(guardPolicySchema, { classificationRules: [] })).toEqual(DEFAULT_GUARD_POLICY);
    expect(() => parse(guardPolicySchema, { classificationRules: [{ team: 'finance', atLeast: 'public' }] })).toThrow(/classificationRules\.0\.atLeast/);
    expect(() => parse(guardPolicySchema, { classificationRules: [{ agent: 'bot', atLeast: 'restricted' }] })).toThrow(/classificationRules\.0\.agent/);
    expect(() => parse(guardPolicySchema, { classificationRules: [{ team: 'Finance Team', atLeast: 'restricted' }] })).toThrow(/classificationRules\.0\.team/);
    expect(() => parse(guardPolicySchema, { classificationRules: [{ atLeast: 'restricted' }] })).toThrow(/at least one of team, agent, model/);
    expect(() => parse(guardPolicySchema, { classificationRules: [{ team: 'finance', atLeast: 'restricted', user: 'bob' }] })).toThrow(/classificationRules\.0/);
  });
});

describe('guard policy service', () => {
  const alone = () => new TenantChanges(processesOfOneRouter(), { warn: () => undefined });
  const setup = () => new GuardPolicyService({ store: new InMemoryEventStore(), eventContext: systemEventContext('llm-router'), cacheMs: 60_000, changes: alone() });

  it('is configured by router or tenant administrators only, with If-Match, and read per tenant', async () => {
    const service = setup();
    expect(await service.view(admin)).toEqual({ ...DEFAULT_GUARD_POLICY, etag: 0 });
    const view = await service.configure(admin, { pii: { public: { email: 'block' } }, injection: 'block', toolCalls: 'refuse' });
    expect(view.etag).toBe(1);
    await expect(service.configure(tenantAdmin, { ...DEFAULT_GUARD_POLICY }, 0)).rejects.toMatchObject({ name: 'ConcurrencyError' });
    expect((await service.configure(tenantAdmin, { ...DEFAULT_GUARD_POLICY }, 1)).etag).toBe(2);
    for (const who of [agent, person]) {
      await expect(service.configure(who, DEFAULT_GUARD_POLICY)).rejects.toMatchObject({ code: 'forbidden' });
      await expect(service.view(who)).rejects.toMatchObject({ code: 'forbidden' });
    }
    // another tenant sees its own (default) policy, never ours
    await service.configure(admin, { pii: { public: { email: 'block' } }, injection: 'block', toolCalls: 'refuse' });
    expect(await service.view(otherAdmin)).toEqual({ ...DEFAULT_GUARD_POLICY, etag: 0 });
    expect(await service.current('globex')).toEqual(DEFAULT_GUARD_POLICY);
    expect((await service.current('acme')).injection).toBe('block');
  });

  it('serves the request path from its cache and forgets a tenant on change', async () => {
    const store = new InMemoryEventStore();
    const service = new GuardPolicyService({ store, eventContext: systemEventContext('llm-router'), cacheMs: 60_000, changes: alone() });
    const reads = jest.spyOn(store, 'readStream');
    await service.current('acme');
    await service.current('acme');
    expect(reads).toHaveBeenCalledTimes(1);
    await service.configure(admin, { ...DEFAULT_GUARD_POLICY, injection: 'block' });
    expect((await service.current('acme')).injection).toBe('block');
  });

  it('drops the copy cached by another worker of the router before the change is answered', async () => {
    const store = new InMemoryEventStore();
    const router = processesOfOneRouter();
    const [a, b] = [0, 1].map(() => new GuardPolicyService({ store, eventContext: systemEventContext('llm-router'), cacheMs: 60_000, changes: new TenantChanges(router, { warn: () => undefined }) }));
    expect((await b.current('acme')).injection).toBe('flag');
    await a.configure(admin, { ...DEFAULT_GUARD_POLICY, injection: 'block' });
    expect((await b.current('acme')).injection).toBe('block');
    // another tenant's copy stays
    const reads = jest.spyOn(store, 'readStream');
    await b.current('globex');
    await a.configure(admin, { ...DEFAULT_GUARD_POLICY, injection: 'flag' });
    await b.current('globex');
    expect(reads.mock.calls.filter(([, stream]) => String(stream).includes('globex'))).toHaveLength(1);
  });
});
