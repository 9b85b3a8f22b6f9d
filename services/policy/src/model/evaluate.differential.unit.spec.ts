import { referenceEvaluate, ReferenceTenantPolicy } from '../../test/reference/evaluate-v1';
import { seededRandom } from '../../test/seeded-random';
import { evaluate } from './evaluate';
import type { AttributeDefinition, AttributeValue, Condition, ComparisonOp, DecisionRequest, Rule } from './policy.model';
import { TenantPolicy } from './tenant-policy';
import type { PermissionEvent } from '../policyset/policyset.events';

// The evaluator compiles per policy version what it used to work out per decision
// (merged rule maps, shared conditions, attribute readers, level ranks): every decision
// must stay what the evaluator before it (test/reference/evaluate-v1.ts) answers, on
// generated tenants (roles, denies, ABAC, field rules, sessions, tools, agents, critical
// actions, republished, rolled-back and withdrawn documents, redefined scales) and requests.

const LEVELS = ['public', 'internal', 'confidential', 'secret'];
const OTHER_LEVELS = ['low', 'mid', 'high'];
const WORDS = ['finance', 'legal', 'hr', 'it', 'risk', 'ops'];
const TYPES = ['report', 'invoice', 'session', 'tool', 'policy', 'document', '*'];
const ACTIONS = ['read', 'write', 'share', 'create', 'archive', 'invoke', 'approve', 'payments.create', '*'];
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const AGENTS = ['helper', 'scout', 'runner'];
const ROLES = ['employee', 'analyst', 'senior', 'auditor', 'admin', 'guest'];
const FIELDS = ['name', 'salary', 'iban', 'notes', '*'];

/** Subject and resource attributes, one of each type; `id` and `constructor` are names a tenant may define too. */
const DEFINITIONS: AttributeDefinition[] = [
  { name: 'department', target: 'subject', type: 'string' },
  { name: 'clearance', target: 'subject', type: 'level', levels: LEVELS },
  { name: 'teams', target: 'subject', type: 'string[]' },
  { name: 'age', target: 'subject', type: 'number' },
  { name: 'active', target: 'subject', type: 'boolean' },
  { name: 'department', target: 'resource', type: 'string' },
  { name: 'classification', target: 'resource', type: 'level', levels: LEVELS },
  { name: 'tags', target: 'resource', type: 'string[]' },
  { name: 'amount', target: 'resource', type: 'number' },
  { name: 'owner', target: 'resource', type: 'string' },
  { name: 'id', target: 'resource', type: 'string' },
  { name: 'constructor', target: 'resource', type: 'string' },
];
const OPS: ComparisonOp[] = ['eq', 'ne', 'in', 'contains', 'gte', 'gt', 'lte', 'lt'];

function generator(seed: number) {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const chance = (p: number) => random() < p;
  const some = <T>(list: readonly T[], max: number): T[] => Array.from({ length: Math.floor(random() * (max + 1)) }, () => pick(list));

  const valueOf = (def: AttributeDefinition | undefined): AttributeValue => {
    switch (def?.type) {
      case 'level':
        return chance(0.9) ? pick(def.levels ?? LEVELS) : pick(WORDS);
      case 'number':
        return chance(0.9) ? Math.floor(random() * 10) : pick(WORDS);
      case 'boolean':
        return chance(0.5);
      case 'string[]':
        return some(WORDS, 3);
      default:
        return chance(0.8) ? pick(WORDS) : pick(USERS);
    }
  };
  const pathOf = (d: AttributeDefinition) => `${d.target}.${d.name}`;
  const builtIns = ['subject.id', 'resource.id'];

  const condition = (depth: number): Condition => {
    const r = random();
    if (depth < 3 && r < 0.15) return { all: Array.from({ length: 1 + Math.floor(random() * 3) }, () => condition(depth + 1)) };
    if (depth < 3 && r < 0.25) return { any: Array.from({ length: 1 + Math.floor(random() * 3) }, () => condition(depth + 1)) };
    if (depth < 3 && r < 0.3) return { not: condition(depth + 1) };
    const def = chance(0.9) ? pick(DEFINITIONS) : undefined;
    const attr = def ? pathOf(def) : pick(builtIns);
    const ordered = def?.type === 'level' || def?.type === 'number';
    const op = ordered && chance(0.6) ? pick(['gte', 'gt', 'lte', 'lt'] as const) : pick(OPS);
    if (chance(0.35)) {
      const same = DEFINITIONS.filter((d) => d.type === def?.type && d !== def);
      return { attr, op, ref: same.length && chance(0.8) ? pathOf(pick(same)) : pick([...builtIns, ...DEFINITIONS.map(pathOf)]) };
    }
    const value = chance(0.2) ? some(WORDS, 3) : (valueOf(def) as string | number | boolean);
    return { attr, op, value: Array.isArray(value) ? [...value] : value };
  };

  const subjectKey = () => (chance(0.6) ? `role:${pick(ROLES)}` : chance(0.6) ? `user:${pick(USERS)}` : chance(0.7) ? `agent:${pick(AGENTS)}` : 'service:billing');
  // tenants repeat conditions across rules and documents: these are shared once compiled
  const pool = Array.from({ length: 6 }, () => condition(0));
  let ruleId = 0;
  const rule = (): Rule => {
    const effect = pick(['allow', 'allow', 'allow', 'deny', 'mask'] as const);
    const out: Rule = { id: `r${ruleId++}`, effect, subject: subjectKey(), resource: pick(TYPES), action: pick(ACTIONS) };
    if (chance(0.6)) out.when = chance(0.5) ? structuredClone(pick(pool)) : condition(0);
    if (effect === 'mask' || (effect === 'deny' && chance(0.4))) out.fields = some(FIELDS, 2).concat(pick(FIELDS));
    return out;
  };

  const events = (): PermissionEvent[] => {
    const out: PermissionEvent[] = DEFINITIONS.map((definition) => ({ type: 'policy.attribute.defined', data: { definition } }));
    for (const role of ROLES) out.push({ type: 'policy.role.defined', data: { role, inherits: some(ROLES.filter((r) => r !== role), 2) } });
    const subjects = [...USERS.map((u) => `user:${u}`), ...AGENTS.map((a) => `agent:${a}`), 'service:billing'];
    out.push({ type: 'policy.assignment.granted', data: { assignments: subjects.flatMap((subject) => some(ROLES, 2).map((role) => ({ subject, role }))) } });
    for (const subject of subjects) {
      if (!chance(0.7)) continue;
      const attributes: Record<string, AttributeValue> = {};
      for (const d of DEFINITIONS.filter((x) => x.target === 'subject')) if (chance(0.7)) attributes[d.name] = valueOf(d);
      if (chance(0.1)) attributes.id = 'stored-id';
      out.push({ type: 'policy.subject-attributes.set', data: { subject, attributes } });
    }
    out.push({ type: 'policy.tool-allowlist.set', data: { tools: some(['search', 'shell', 'mail'], 2) } });
    for (const agent of AGENTS) if (chance(0.7)) out.push({ type: 'policy.tool-allowlist.set', data: { agent, tools: some(['search', 'shell', 'mail'], 2) } });
    if (chance(0.3)) out.push({ type: 'policy.critical-actions.set', data: { actions: some(ACTIONS.filter((a) => a !== '*'), 2) } });
    const documents = ['main', 'extra', 'more'];
    for (let step = 0, version = 1; step < 6; step++, version++) {
      const policyId = pick(documents);
      const r = random();
      if (r < 0.7) out.push({ type: 'policy.policy.published', data: { policyId, version, rules: Array.from({ length: 5 + Math.floor(random() * 25) }, rule) } });
      else if (r < 0.8) out.push({ type: 'policy.policy.rolled-back', data: { policyId, version, rules: Array.from({ length: 5 + Math.floor(random() * 10) }, rule) } } as PermissionEvent);
      else if (r < 0.9) out.push({ type: 'policy.policy.withdrawn', data: { policyId, version } } as PermissionEvent);
      // a changed scale: every condition is compiled again, and the index rebuilt in another order
      else out.push({ type: 'policy.attribute.defined', data: { definition: { name: 'clearance', target: 'subject', type: 'level', levels: chance(0.5) ? [...LEVELS].reverse() : OTHER_LEVELS } } });
    }
    if (chance(0.3)) out.push({ type: 'policy.assignment.revoked', data: { assignments: [{ subject: `user:${pick(USERS)}`, role: pick(ROLES) }] } });
    if (chance(0.2)) out.push({ type: 'policy.role.removed', data: { role: pick(ROLES) } } as PermissionEvent);
    return out;
  };

  const request = (tenantId: string): DecisionRequest => {
    const type = pick(['user', 'user', 'agent', 'agent', 'service'] as const);
    const resourceType = pick(TYPES.filter((t) => t !== '*').concat('unknown'));
    const attributes: Record<string, AttributeValue> = {};
    for (const d of DEFINITIONS.filter((x) => x.target === 'resource')) if (chance(0.6)) attributes[d.name] = valueOf(d);
    if (resourceType === 'session' || chance(0.1)) {
      if (chance(0.6)) attributes.owner = pick(USERS);
      if (chance(0.6)) attributes.collaborators = some(USERS, 2);
      if (chance(0.5)) attributes.viewers = some(USERS, 2);
      if (chance(0.6)) attributes.agents = some(AGENTS, 2);
    }
    const req: DecisionRequest = {
      tenantId,
      subject: { type, id: type === 'user' ? pick(USERS) : type === 'agent' ? pick(AGENTS) : 'billing' },
      action: pick(ACTIONS.filter((a) => a !== '*').concat('unknown')),
      resource: { type: resourceType },
    };
    if (type === 'agent' && chance(0.9)) req.subject.actingFor = pick(USERS);
    if (chance(0.2)) req.subject.teams = some(WORDS, 2);
    if (chance(0.2)) req.subject.department = pick(WORDS);
    if (chance(0.1)) req.subject.tenantId = pick([tenantId, 'system', 'other']);
    if (chance(0.1)) req.resource.tenantId = pick([tenantId, 'other']);
    if (resourceType === 'tool' || chance(0.8)) req.resource.id = resourceType === 'tool' ? pick(['search', 'shell', 'mail', 'rm']) : pick(['doc-1', 'doc-2', ...USERS]);
    if (chance(0.8)) req.resource.attributes = attributes;
    if (chance(0.3)) req.resource.fields = some(FIELDS.filter((f) => f !== '*'), 4);
    if (chance(0.1)) req.parameters = { amount: Math.floor(random() * 100) };
    if (chance(0.15)) req.explain = true;
    return req;
  };

  return { events, request };
}

function bothApplied(tenantId: string, events: readonly PermissionEvent[]): [TenantPolicy, ReferenceTenantPolicy] {
  const current = new TenantPolicy(tenantId);
  const reference = new ReferenceTenantPolicy(tenantId);
  for (const e of events) {
    current.apply(e);
    reference.apply(e);
  }
  return [current, reference];
}

describe('the evaluator decides exactly as the evaluator before it', () => {
  it('on 300 generated tenants and 60 requests each, explain included', () => {
    let compared = 0;
    const outcomes = new Map<string, number>();
    for (let seed = 1; seed <= 300; seed++) {
      const g = generator(seed);
      const [current, reference] = bothApplied('acme', g.events());
      const [platform, referencePlatform] = bothApplied('system', g.events());
      for (let i = 0; i < 60; i++) {
        const req = g.request('acme');
        const expected = referenceEvaluate(structuredClone(req), { tenant: reference, platform: referencePlatform });
        const actual = evaluate(structuredClone(req), { tenant: current, platform });
        if (JSON.stringify(actual) !== JSON.stringify(expected)) expect({ seed, i, req, actual }).toEqual({ seed, i, req, actual: expected });
        const kind = `${actual.decision} ${actual.rule.includes('/') ? 'rule' : actual.rule}${actual.fields ? ' fields' : ''}`;
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
        compared++;
      }
    }
    expect(compared).toBe(18_000);
    // the generated cases reach every kind of answer, so the comparison covers them
    for (const kind of [
      'allow rule',
      'allow rule fields',
      'deny rule',
      'deny default-deny',
      'requires_approval critical-action',
      'deny cross-tenant',
      'deny agent-without-user',
      'deny agent-immutable',
      'deny agent-tool-allowlist',
      'deny tenant-tool-allowlist',
    ]) {
      expect([kind, (outcomes.get(kind) ?? 0) > 10]).toEqual([kind, true]);
    }
    expect([...outcomes.keys()].some((k) => k.startsWith('allow session-role:'))).toBe(true);
  });

  it('on the benchmark-shaped tenant (chains of roles, every rule conditioned), whose conditions are shared by thousands of rules', () => {
    const levels = ['public', 'internal', 'confidential', 'secret'];
    const events: PermissionEvent[] = [
      { type: 'policy.attribute.defined', data: { definition: { name: 'department', target: 'subject', type: 'string' } } },
      { type: 'policy.attribute.defined', data: { definition: { name: 'clearance', target: 'subject', type: 'level', levels } } },
      { type: 'policy.attribute.defined', data: { definition: { name: 'department', target: 'resource', type: 'string' } } },
      { type: 'policy.attribute.defined', data: { definition: { name: 'classification', target: 'resource', type: 'level', levels } } },
    ];
    for (let i = 0; i < 20; i++) events.push({ type: 'policy.role.defined', data: { role: `role-${i}`, inherits: i % 5 === 0 ? [] : [`role-${i - 1}`] } });
    events.push({ type: 'policy.assignment.granted', data: { assignments: Array.from({ length: 100 }, (_, u) => ({ subject: `user:u${u}`, role: `role-${u % 20}` })) } });
    for (let u = 0; u < 100; u++) events.push({ type: 'policy.subject-attributes.set', data: { subject: `user:u${u}`, attributes: { department: WORDS[u % 5], clearance: levels[u % 4] } } });
    const rules: Rule[] = [];
    for (let k = 0; k < 4000; k++) {
      rules.push({
        id: `r${k}`,
        effect: k % 20 === 19 ? 'deny' : 'allow',
        subject: `role:role-${k % 20}`,
        resource: `type-${Math.floor(k / 200) % 20}`,
        action: ['read', 'write', 'share'][Math.floor(k / 20) % 3],
        when:
          k % 20 === 19
            ? { attr: 'resource.classification', op: 'eq', value: 'secret' }
            : { all: [{ attr: 'subject.department', op: 'eq', ref: 'resource.department' }, { attr: 'subject.clearance', op: 'gte', ref: 'resource.classification' }] },
      });
    }
    for (let i = 0; i * 500 < rules.length; i++) events.push({ type: 'policy.policy.published', data: { policyId: `p${i}`, version: 1, rules: rules.slice(i * 500, (i + 1) * 500) } });
    const [current, reference] = bothApplied('bench', events);
    const allowed = { current: 0, reference: 0 };
    for (let i = 0; i < 3000; i++) {
      const req: DecisionRequest = {
        tenantId: 'bench',
        subject: { type: 'user', id: `u${(i * 37) % 100}` },
        action: ['read', 'write', 'share'][i % 3],
        resource: { type: `type-${(i * 31) % 20}`, id: `doc-${i}`, attributes: { department: WORDS[i % 5], classification: levels[(i >> 2) % 4] } },
      };
      const actual = evaluate(req, { tenant: current, platform: undefined });
      const expected = referenceEvaluate(req, { tenant: reference, platform: undefined });
      expect(actual).toEqual(expected);
      if (actual.decision === 'allow') allowed.current++;
      if (expected.decision === 'allow') allowed.reference++;
    }
    expect(allowed.current).toBe(allowed.reference);
    expect(allowed.current).toBeGreaterThan(100);
    expect(allowed.current).toBeLessThan(2900);
  });
});
