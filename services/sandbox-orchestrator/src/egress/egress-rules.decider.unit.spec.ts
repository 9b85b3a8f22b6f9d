import { DeciderSpecification } from '@palisade/eventsourcing';
import { egressRulesDecider, type EgressRulesCommand } from './egress-rules.decider';
import type { EgressRulesEvent } from './egress-rules.events';
import type { EgressRule } from './egress.rules';

const spec = DeciderSpecification.for(egressRulesDecider);
const at = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-03T10:00:00.000Z') };
const cmd = (c: Omit<EgressRulesCommand, 'metadata'>) => ({ ...c, metadata: at }) as EgressRulesCommand;
const SECRET = '00000000-0000-4000-8000-000000000001';
const gerrit: EgressRule = { id: 'gerrit', host: 'gerrit.acme.test', inject: { secretId: SECRET, tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } } };
const pypi: EgressRule = { id: 'pypi', host: '*.pythonhosted.org' };
const set = (scope: string, rules: EgressRule[]): EgressRulesEvent => ({ type: 'sandbox-orchestrator.egress_rules.set', data: { scope, rules } });
const removed = (scope: string): EgressRulesEvent => ({ type: 'sandbox-orchestrator.egress_rules.removed', data: { scope } });

describe('egress rules decider', () => {
  it('sets a scope’s rules, replaces them, and does nothing when they are the same', () => {
    spec([]).when(cmd({ type: 'set', data: { scope: 'tenant', rules: [gerrit] } })).then([set('tenant', [gerrit])]);
    spec([set('tenant', [gerrit])]).when(cmd({ type: 'set', data: { scope: 'tenant', rules: [gerrit, pypi] } })).then([set('tenant', [gerrit, pypi])]);
    spec([set('tenant', [gerrit])]).when(cmd({ type: 'set', data: { scope: 'tenant', rules: [{ ...gerrit }] } })).then([]);
    spec([set('tenant', [gerrit])]).when(cmd({ type: 'set', data: { scope: 'tenant', rules: [] } })).then([set('tenant', [])]);
  });

  it('an agent’s or a session’s set narrows: it names no secret, address or CA', () => {
    spec([]).when(cmd({ type: 'set', data: { scope: 'agent:release-bot', rules: [pypi] } })).then([set('agent:release-bot', [pypi])]);
    spec([]).when(cmd({ type: 'set', data: { scope: 'agent:release-bot', rules: [pypi, gerrit] } })).thenThrows('validation', 'rules.1.inject');
    spec([]).when(cmd({ type: 'set', data: { scope: 'session:s-1', rules: [{ ...pypi, addresses: ['10.0.0.1'] }] } })).thenThrows('validation', 'rules.0.addresses');
    spec([]).when(cmd({ type: 'set', data: { scope: 'session:s-1', rules: [{ ...pypi, upstreamCaPem: 'BEGIN CERTIFICATE' }] } })).thenThrows('validation', 'rules.0.upstreamCaPem');
  });

  it('removes a set once; a removed set can be set again', () => {
    spec([set('tenant', [gerrit])]).when(cmd({ type: 'remove', data: {} })).then([removed('tenant')]);
    spec([set('tenant', [gerrit]), removed('tenant')]).when(cmd({ type: 'remove', data: {} })).thenThrows('not_found');
    spec([]).when(cmd({ type: 'remove', data: {} })).thenThrows('not_found');
    spec([set('tenant', [gerrit]), removed('tenant')]).when(cmd({ type: 'set', data: { scope: 'tenant', rules: [gerrit] } })).then([set('tenant', [gerrit])]);
  });
});
