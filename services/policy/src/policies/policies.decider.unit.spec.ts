import { DeciderSpecification } from '@palisade/eventsourcing';
import type { AttributeDefinition, Rule } from '../model/policy.model';
import type { PolicyDocumentEvent } from '../policyset/policyset.events';
import { MAX_RULES_PER_POLICY, policyDocumentDecider, type PolicyDocumentCommand } from './policies.decider';

const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'admin' }, now: new Date('2026-11-22T10:00:00.000Z') };
const definitions = new Map<string, AttributeDefinition>([
  ['subject.department', { name: 'department', target: 'subject', type: 'string' }],
  ['resource.department', { name: 'department', target: 'resource', type: 'string' }],
]);
const spec = DeciderSpecification.for(policyDocumentDecider);
const publish = (rules: Rule[]) => ({ type: 'publish', data: { policyId: 'main', rules, definitions }, metadata }) as PolicyDocumentCommand;
const v1: Rule[] = [{ id: 'r1', effect: 'allow', subject: 'role:analyst', resource: 'report', action: 'read' }];
const v2: Rule[] = [{ id: 'r2', effect: 'allow', subject: 'role:analyst', resource: 'report', action: '*', when: { attr: 'subject.department', op: 'eq', ref: 'resource.department' } }];
const published = (version: number, rules: Rule[]): PolicyDocumentEvent => ({ type: 'policy.policy.published', data: { policyId: 'main', version, rules } });

describe('policy documents', () => {
  it('publishes versioned rule sets', () => {
    spec([]).when(publish(v1)).then([published(1, v1)]);
    spec([published(1, v1)]).when(publish(v2)).then([published(2, v2)]);
  });

  it('refuses malformed rules, naming the rule and the field', () => {
    spec([]).when(publish([{ ...v1[0], when: { attr: 'subject.grade', op: 'eq', value: 3 } }])).thenThrows('validation', 'rules.0.when.attr: attribute subject.grade is not defined');
    spec([]).when(publish([{ ...v1[0], when: { attr: 'subject.department', op: 'gte', value: 'x' } }])).thenThrows('validation', 'rules.0.when.op');
    spec([]).when(publish([v1[0], v1[0]])).thenThrows('validation', 'rules.1.id: r1 is used twice');
    spec([]).when(publish([{ ...v1[0], subject: 'analyst' }])).thenThrows('validation', 'rules.0.subject');
    spec([]).when(publish([{ ...v1[0], effect: 'mask' }])).thenThrows('validation', 'rules.0.fields');
    spec([]).when(publish(Array.from({ length: MAX_RULES_PER_POLICY + 1 }, (_, i) => ({ ...v1[0], id: `r${i}` })))).thenThrows('validation', 'rules: at most');
  });

  it('rolls back to an earlier version as a new version', () => {
    spec([published(1, v1), published(2, v2)])
      .when({ type: 'rollback', data: { policyId: 'main', toVersion: 1 }, metadata })
      .then([{ type: 'policy.policy.rolled-back', data: { policyId: 'main', version: 3, toVersion: 1, rules: v1 } }]);
    spec([published(1, v1)]).when({ type: 'rollback', data: { policyId: 'main', toVersion: 7 }, metadata }).thenThrows('validation', 'toVersion');
    spec([]).when({ type: 'rollback', data: { policyId: 'main', toVersion: 1 }, metadata }).thenThrows('not_found');
  });

  it('withdraws a policy', () => {
    spec([published(1, v1)]).when({ type: 'withdraw', data: { policyId: 'main' }, metadata }).then([{ type: 'policy.policy.withdrawn', data: { policyId: 'main', version: 2 } }]);
    spec([]).when({ type: 'withdraw', data: { policyId: 'main' }, metadata }).thenThrows('not_found');
  });
});
