import { systemEventContext, type EventEnvelope, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import type { EgressRulesEvent } from './egress-rules.events';
import type { EgressRuleSetRow, EgressRulesRepository } from './egress-rules.repository';
import { EgressRulesService } from './egress-rules.service';
import type { EgressRule } from './egress.rules';

const admin = { type: 'user', id: 'alice', tenantId: 'acme', scopes: ['policy:admin'] } as Principal;
const otherAdmin = { type: 'user', id: 'olga', tenantId: 'other', scopes: ['policy:admin'] } as Principal;
const member = { type: 'user', id: 'bob', tenantId: 'acme', scopes: ['agents:manage'] } as Principal;
const agent = { type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice', scopes: ['policy:admin'] } as Principal;
const SECRET = '00000000-0000-4000-8000-000000000001';
const SESSION = '0190b7e4-1c2d-7a3b-8c4d-5e6f7a8b9c0d';
const gerrit: EgressRule = { id: 'gerrit', host: 'gerrit.acme.test', inject: { secretId: SECRET, tool: 'gerrit', as: { type: 'header', name: 'Authorization' } } };
const pypi: EgressRule = { id: 'pypi', host: '*.pythonhosted.org' };

/** The read model as the projection keeps it, in memory. */
function memoryRepository(): Pick<EgressRulesRepository, 'ruleSet' | 'ruleSets' | 'rulesOf' | 'projection'> & { queries: number } {
  const rows = new Map<string, EgressRuleSetRow>();
  const repo = {
    queries: 0,
    ruleSet: async (tenantId: string, scope: string) => rows.get(`${tenantId}|${scope}`),
    ruleSets: async (tenantId: string) => [...rows.values()].filter((r) => r.tenantId === tenantId && r.status === 'set'),
    rulesOf: async (tenantId: string, scopes: readonly string[]) => {
      repo.queries++;
      return new Map(scopes.flatMap((s) => { const r = rows.get(`${tenantId}|${s}`); return r?.status === 'set' ? [[s, r.rules] as const] : []; }));
    },
    projection: {
      name: 'egress_rule_sets',
      handles: ['sandbox-orchestrator.egress_rules.set', 'sandbox-orchestrator.egress_rules.removed'],
      apply: async (_tx: unknown, events: readonly EventEnvelope[], version: number) => {
        for (const e of events) {
          const event = { type: e.type, data: e.data } as EgressRulesEvent;
          const rules = event.type === 'sandbox-orchestrator.egress_rules.set' ? event.data.rules : [];
          rows.set(`${e.tenantId}|${event.data.scope}`, { tenantId: e.tenantId, scope: event.data.scope, rules, status: event.type.endsWith('.set') ? 'set' : 'removed', version, updatedAt: e.occurredAt });
        }
      },
    },
  };
  return repo as never;
}

describe('EgressRulesService', () => {
  let repo: ReturnType<typeof memoryRepository>;
  let service: EgressRulesService;
  beforeEach(() => {
    repo = memoryRepository();
    service = new EgressRulesService({ store: new InMemoryEventStore(), repo, eventContext: systemEventContext('sandbox-orchestrator') });
  });

  it('the tenant’s policy administrators set, read, list and remove rule sets (ETag = version, If-Match honoured)', async () => {
    expect(await service.set(admin, 'tenant', [gerrit])).toMatchObject({ scope: 'tenant', rules: [gerrit], etag: 1 });
    expect(await service.set(admin, 'tenant', [gerrit, pypi], 1)).toMatchObject({ etag: 2 });
    await expect(service.set(admin, 'tenant', [pypi], 1)).rejects.toMatchObject({ code: 'conflict' });
    expect((await service.list(admin)).map((s) => s.scope)).toEqual(['tenant']);
    await service.remove(admin, 'tenant', 2);
    await expect(service.get(admin, 'tenant')).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.remove(admin, 'tenant')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('agents administer nothing, members without the scope neither; another tenant’s rule set is not found', async () => {
    await service.set(admin, 'tenant', [gerrit]);
    for (const who of [agent, member]) {
      await expect(service.get(who, 'tenant')).rejects.toMatchObject({ code: 'forbidden' });
      await expect(service.set(who, 'tenant', [])).rejects.toMatchObject({ code: 'forbidden' });
      await expect(service.list(who)).rejects.toMatchObject({ code: 'forbidden' });
    }
    await expect(service.get(agent, 'tenant')).rejects.toThrow(/agent administers no egress rules/);
    await expect(service.get(otherAdmin, 'tenant')).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.remove(otherAdmin, 'tenant')).rejects.toMatchObject({ code: 'not_found' });
    expect(await service.list(otherAdmin)).toEqual([]);
  });

  it('the proxy’s rules: the tenant’s, narrowed by the running agent’s and the session’s; a change applies at once', async () => {
    await service.set(admin, 'tenant', [gerrit, pypi]);
    expect((await service.rulesFor('acme', SESSION)).map((r) => r.id)).toEqual(['gerrit', 'pypi']);
    expect(await service.rulesFor('other', SESSION)).toEqual([]);
    await service.set(admin, 'agent:release-bot', [{ id: 'only-pypi', host: '*.pythonhosted.org' }]);
    expect((await service.rulesFor('acme', SESSION, 'release-bot')).map((r) => r.id)).toEqual(['pypi/only-pypi']);
    expect((await service.rulesFor('acme', SESSION, 'other-bot')).map((r) => r.id)).toEqual(['gerrit', 'pypi']);
    await service.set(admin, `session:${SESSION}`, []);
    expect(await service.rulesFor('acme', SESSION)).toEqual([]);
    const before = repo.queries;
    await service.rulesFor('acme', SESSION);
    expect(repo.queries).toBe(before); // reused
    await service.remove(admin, `session:${SESSION}`);
    expect((await service.rulesFor('acme', SESSION)).map((r) => r.id)).toEqual(['gerrit', 'pypi']);
  });
});
