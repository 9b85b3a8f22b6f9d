import type { EventEnvelope } from '@palisade/contracts';
import { Registry } from '@palisade/observability';
import { EventTail } from '@palisade/postgres';
import type { Platform } from '@palisade/service-kit';
import { DecisionService } from '../decisions/decisions.service';
import { evaluate } from '../model/evaluate';
import { loadPolicySettings } from '../policy.config';
import { PolicyEngine } from './policy-engine';

// The engine's memory bound: tenants are loaded from their events on first use (the
// event store read is stubbed here: EventTail.load hands over each tenant's events),
// and the least recently asked-about tenant is dropped once more than
// POLICY_MAX_TENANTS are held; a dropped tenant is loaded again, current, when asked.
const loads: string[] = [];
const published = new Map<string, string>(); // tenant → the action its one rule allows

const envelope = (tenantId: string, type: string, data: object) => ({ tenantId, type, data }) as unknown as EventEnvelope;
function eventsOf(tenantId: string): EventEnvelope[] {
  return [
    envelope(tenantId, 'policy.role.defined', { role: 'reader', inherits: [] }),
    envelope(tenantId, 'policy.assignment.granted', { assignments: [{ subject: 'user:alice', role: 'reader' }] }),
    envelope(tenantId, 'policy.policy.published', {
      policyId: 'main',
      version: 1,
      rules: [{ id: 'r', effect: 'allow', subject: 'role:reader', resource: 'document', action: published.get(tenantId) ?? 'read' }],
    }),
  ];
}

let onEvents: (events: EventEnvelope[]) => void;
let lastPlatform: Platform;
beforeAll(() => {
  jest.spyOn(EventTail.prototype, 'load').mockImplementation(async (tenantId: string, apply: (events: EventEnvelope[]) => void) => {
    loads.push(tenantId);
    apply(eventsOf(tenantId));
  });
});
afterAll(() => jest.restoreAllMocks());

function engineWith(maxTenants: number) {
  const metrics = new Registry();
  const platform = {
    connection: () => ({ host: 'unused', port: 5432, database: 'unused', user: 'unused', password: 'unused', schema: 'unused' }),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    options: { metrics },
    afterConnect: () => undefined,
    beforeClose: () => undefined,
    follow: () => undefined,
    maxEventLagMs: 5000,
  } as unknown as Platform;
  const engine = new PolicyEngine(platform, { ...loadPolicySettings({}), maxTenants });
  lastPlatform = platform;
  // the tail's change feed, as EventTail would call it
  onEvents = (events) => (engine as unknown as { onEvents(e: EventEnvelope[]): void }).onEvents(events);
  return { engine, metrics };
}

const allows = async (engine: PolicyEngine, tenantId: string, action: string) =>
  evaluate({ tenantId, subject: { type: 'user', id: 'alice' }, action, resource: { type: 'document' } }, await engine.lookup(tenantId, undefined)).decision === 'allow';

describe('PolicyEngine: tenants in memory, bounded', () => {
  beforeEach(() => {
    loads.length = 0;
    published.clear();
  });

  it('keeps at most POLICY_MAX_TENANTS, dropping the least recently asked about first', async () => {
    const { engine, metrics } = engineWith(3);
    for (const t of ['a', 'b', 'c']) await engine.policyOf(t);
    expect(engine.peek('a')).toBeDefined(); // 'a' is used again: 'b' is now the least recent
    await engine.policyOf('d');
    expect(engine.tenantsInMemory).toBe(3);
    expect(engine.peek('b')).toBeUndefined();
    expect(['a', 'c', 'd'].every((t) => engine.peek(t) !== undefined)).toBe(true);
    expect(await metrics.getSingleMetricAsString('palisade_policy_tenants_evicted_total')).toMatch(/ 1$/m);
  });

  it('does not count a policy change as a use, and loads a dropped tenant again with its current policy', async () => {
    const { engine } = engineWith(2);
    await expect(allows(engine, 'a', 'read')).resolves.toBe(true);
    await engine.policyOf('b');
    onEvents([envelope('a', 'policy.policy.published', { policyId: 'main', version: 2, rules: [] })]);
    await engine.policyOf('c'); // 'a' is still the least recently asked about
    expect(engine.peek('a')).toBeUndefined();
    expect(engine.peek('b')).toBeDefined();
    onEvents([envelope('a', 'policy.policy.published', { policyId: 'main', version: 3, rules: [] })]); // not in memory: nothing to apply
    published.set('a', 'share'); // what a's events say now
    await expect(allows(engine, 'a', 'share')).resolves.toBe(true);
    expect(loads).toEqual(['a', 'b', 'c', 'a']);
  });

  it('applies changes to a tenant in memory, without loading it again', async () => {
    const { engine } = engineWith(10);
    for (let i = 0; i < 3; i++) await expect(allows(engine, 'a', 'read')).resolves.toBe(true);
    onEvents([envelope('a', 'policy.policy.published', { policyId: 'main', version: 2, rules: [{ id: 'r', effect: 'allow', subject: 'role:reader', resource: 'document', action: 'write' }] })]);
    await expect(allows(engine, 'a', 'write')).resolves.toBe(true);
    await expect(allows(engine, 'a', 'read')).resolves.toBe(false);
    expect(loads).toEqual(['a']);
  });
});

describe('PolicyEngine: fails closed while its tail is behind', () => {
  const request = { tenantId: 'a', subject: { type: 'user' as const, id: 'alice' }, action: 'read', resource: { type: 'document' } };
  let lag = 0;
  beforeAll(() => jest.spyOn(EventTail.prototype, 'lagMs').mockImplementation(() => lag));

  it('allows from a current state, and denies, naming why, once the tail is more than EVENT_LAG_MAX_MS (5 s) behind', async () => {
    const { engine } = engineWith(10);
    const decisions = new DecisionService(engine, {} as never, lastPlatform);
    lag = 200;
    expect(engine.staleness()).toBeUndefined();
    await expect(Promise.resolve(decisions.decide(request))).resolves.toMatchObject({ decision: 'allow' });
    lag = 5200;
    expect(engine.staleness()).toBe('policy changes last read 5.2 s ago');
    expect(decisions.decide(request)).toEqual({
      decision: 'deny',
      rule: 'policy-stale',
      reason: 'the policy state may be stale (policy changes last read 5.2 s ago): denied until it is current',
    });
    lag = Infinity; // never caught up (disconnected since start)
    expect(decisions.decide(request)).toMatchObject({ decision: 'deny', rule: 'policy-stale' });
    lag = 0;
    await expect(Promise.resolve(decisions.decide(request))).resolves.toMatchObject({ decision: 'allow' });
  });
});
