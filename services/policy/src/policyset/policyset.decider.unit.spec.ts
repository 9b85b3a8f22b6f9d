import { DeciderSpecification } from '@palisade/eventsourcing';
import { policySetDecider, type PolicySetCommand } from './policyset.decider';
import type { PolicySetEvent } from './policyset.events';

const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'admin' }, now: new Date('2026-11-22T10:00:00.000Z') };
const c = (command: Omit<PolicySetCommand, 'metadata'>) => ({ ...command, metadata }) as PolicySetCommand;
const spec = DeciderSpecification.for(policySetDecider);
const role = (name: string, inherits: string[] = []): PolicySetEvent => ({ type: 'policy.role.defined', data: { role: name, inherits } });

describe('policy set: roles and assignments', () => {
  it('defines roles with inheritance', () => {
    spec([role('employee')]).when(c({ type: 'defineRole', data: { role: 'analyst', inherits: ['employee'] } })).then([role('analyst', ['employee'])]);
    spec([role('employee'), role('analyst', ['employee'])]).when(c({ type: 'defineRole', data: { role: 'analyst', inherits: ['employee'] } })).then([]);
  });

  it('refuses unknown parents, cycles and over-deep hierarchies, naming the field', () => {
    spec([]).when(c({ type: 'defineRole', data: { role: 'analyst', inherits: ['ghost'] } })).thenThrows('validation', 'inherits.0: role ghost is not defined');
    spec([role('a'), role('b', ['a'])]).when(c({ type: 'defineRole', data: { role: 'a', inherits: ['b'] } })).thenThrows('validation', 'cycle');
    const chain = Array.from({ length: 9 }, (_, i) => role(`r${i}`, i ? [`r${i - 1}`] : []));
    spec(chain).when(c({ type: 'defineRole', data: { role: 'r9', inherits: ['r8'] } })).thenThrows('validation', 'levels deep');
    spec([]).when(c({ type: 'defineRole', data: { role: 'bad role', inherits: [] } })).thenThrows('validation', 'role:');
  });

  it('grants only defined roles, and only what is not held yet', () => {
    spec([role('analyst')]).when(c({ type: 'grant', data: { assignments: [{ subject: 'user:u1', role: 'analyst' }, { subject: 'user:u1', role: 'analyst' }] } }))
      .then([{ type: 'policy.assignment.granted', data: { assignments: [{ subject: 'user:u1', role: 'analyst' }] } }]);
    spec([role('analyst')]).when(c({ type: 'grant', data: { assignments: [{ subject: 'user:u1', role: 'ghost' }] } })).thenThrows('validation', 'assignments.0.role');
    spec([role('analyst')]).when(c({ type: 'grant', data: { assignments: [{ subject: 'role:x', role: 'analyst' }] } })).thenThrows('validation', 'assignments.0.subject');
  });

  it('refuses to remove a role still assigned or inherited', () => {
    const granted: PolicySetEvent = { type: 'policy.assignment.granted', data: { assignments: [{ subject: 'user:u1', role: 'analyst' }] } };
    spec([role('analyst'), granted]).when(c({ type: 'removeRole', data: { role: 'analyst' } })).thenThrows('illegal_state', 'still assigned');
    spec([role('employee'), role('analyst', ['employee'])]).when(c({ type: 'removeRole', data: { role: 'employee' } })).thenThrows('illegal_state', 'inherited by analyst');
    spec([role('analyst')]).when(c({ type: 'removeRole', data: { role: 'analyst' } })).then([{ type: 'policy.role.removed', data: { role: 'analyst' } }]);
  });
});

describe('policy set: attributes, tools, critical actions', () => {
  const clearance: PolicySetEvent = { type: 'policy.attribute.defined', data: { definition: { name: 'clearance', target: 'subject', type: 'level', levels: ['low', 'high'] } } };

  it('defines attributes and checks subject attribute values against them', () => {
    spec([]).when(c({ type: 'defineAttribute', data: { definition: { name: 'clearance', target: 'subject', type: 'level', levels: ['low', 'high'] } } })).then([clearance]);
    spec([]).when(c({ type: 'defineAttribute', data: { definition: { name: 'clearance', target: 'subject', type: 'level' } } })).thenThrows('validation', 'levels');
    spec([clearance]).when(c({ type: 'setSubjectAttributes', data: { subject: 'user:u1', attributes: { clearance: 'high' } } }))
      .then([{ type: 'policy.subject-attributes.set', data: { subject: 'user:u1', attributes: { clearance: 'high' } } }]);
    spec([clearance]).when(c({ type: 'setSubjectAttributes', data: { subject: 'user:u1', attributes: { clearance: 'top' } } })).thenThrows('validation', 'attributes.clearance: must be one of low, high');
    spec([clearance]).when(c({ type: 'setSubjectAttributes', data: { subject: 'user:u1', attributes: { grade: 3 } } })).thenThrows('validation', 'attributes.grade');
  });

  it('sets tool allowlists and critical actions, sorted and without duplicates', () => {
    spec([]).when(c({ type: 'setToolAllowlist', data: { agent: 'helper', tools: ['search', 'execute_code', 'search'] } }))
      .then([{ type: 'policy.tool-allowlist.set', data: { agent: 'helper', tools: ['execute_code', 'search'] } }]);
    spec([]).when(c({ type: 'setCriticalActions', data: { actions: ['wire.send', 'orders.create'] } }))
      .then([{ type: 'policy.critical-actions.set', data: { actions: ['orders.create', 'wire.send'] } }]);
    spec([]).when(c({ type: 'setToolAllowlist', data: { tools: ['ok', 'not ok'] } })).thenThrows('validation', 'tools.1');
  });
});
