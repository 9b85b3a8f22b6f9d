import { casbinAllows, casbinEnforcerFor } from './casbin-model';
import { actionHash, evaluate } from './evaluate';
import type { DecisionRequest, Rule } from './policy.model';
import { TenantPolicy } from './tenant-policy';
import type { PermissionEvent } from '../policyset/policyset.events';
import { seededRandom } from '../../test/seeded-random';

const LEVELS = ['public', 'internal', 'confidential', 'secret'];

function tenant(id: string, events: PermissionEvent[]): TenantPolicy {
  const policy = new TenantPolicy(id);
  for (const e of events) policy.apply(e);
  return policy;
}

const setup = (rules: Rule[], extra: PermissionEvent[] = []): PermissionEvent[] => [
  { type: 'policy.attribute.defined', data: { definition: { name: 'department', target: 'subject', type: 'string' } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'clearance', target: 'subject', type: 'level', levels: LEVELS } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'groups', target: 'subject', type: 'string[]' } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'department', target: 'resource', type: 'string' } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'classification', target: 'resource', type: 'level', levels: LEVELS } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'owner', target: 'resource', type: 'string' } } },
  { type: 'policy.attribute.defined', data: { definition: { name: 'sensitivity', target: 'resource', type: 'number' } } },
  { type: 'policy.role.defined', data: { role: 'employee', inherits: [] } },
  { type: 'policy.role.defined', data: { role: 'analyst', inherits: ['employee'] } },
  { type: 'policy.role.defined', data: { role: 'senior-analyst', inherits: ['analyst'] } },
  { type: 'policy.role.defined', data: { role: 'cfo', inherits: ['employee'] } },
  {
    type: 'policy.assignment.granted',
    data: {
      assignments: [
        { subject: 'user:alice', role: 'senior-analyst' },
        { subject: 'user:bob', role: 'employee' },
        { subject: 'user:carol', role: 'analyst' },
        { subject: 'agent:helper', role: 'analyst' },
      ],
    },
  },
  { type: 'policy.subject-attributes.set', data: { subject: 'user:alice', attributes: { department: 'finance', clearance: 'confidential', groups: ['risk'] } } },
  { type: 'policy.subject-attributes.set', data: { subject: 'user:carol', attributes: { department: 'legal', clearance: 'internal', groups: [] } } },
  { type: 'policy.policy.published', data: { policyId: 'main', version: 1, rules } },
  ...extra,
];

const req = (subject: DecisionRequest['subject'], action: string, resource: DecisionRequest['resource'], more: Partial<DecisionRequest> = {}): DecisionRequest => ({
  tenantId: 'acme',
  subject,
  action,
  resource,
  ...more,
});
const alice = { type: 'user' as const, id: 'alice' };
const bob = { type: 'user' as const, id: 'bob' };
const carol = { type: 'user' as const, id: 'carol' };
const decide = (policy: TenantPolicy, request: DecisionRequest, platform?: TenantPolicy) => evaluate(request, { tenant: policy, platform });

describe('RBAC with role hierarchy', () => {
  const policy = tenant('acme', setup([
    { id: 'read-reports', effect: 'allow', subject: 'role:employee', resource: 'report', action: 'read' },
    { id: 'write-reports', effect: 'allow', subject: 'role:analyst', resource: 'report', action: 'write' },
    { id: 'approve-any', effect: 'allow', subject: 'role:senior-analyst', resource: '*', action: 'approve' },
  ]));

  it('grants what a role allows to its holders and to the holders of every role inheriting it', () => {
    expect(decide(policy, req(bob, 'read', { type: 'report' }))).toMatchObject({ decision: 'allow', rule: 'main/read-reports' });
    expect(decide(policy, req(alice, 'read', { type: 'report' }))).toMatchObject({ decision: 'allow', rule: 'main/read-reports' });
    expect(decide(policy, req(alice, 'write', { type: 'report' })).decision).toBe('allow');
    expect(decide(policy, req(alice, 'approve', { type: 'invoice' })).decision).toBe('allow');
  });

  it('never grants a parent role what only the child role has', () => {
    expect(decide(policy, req(bob, 'write', { type: 'report' }))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
    expect(decide(policy, req(carol, 'approve', { type: 'report' })).decision).toBe('deny');
  });

  it('denies unknown subjects, actions and resource types, and unknown tenants, without error', () => {
    expect(decide(policy, req({ type: 'user', id: 'nobody' }, 'read', { type: 'report' })).decision).toBe('deny');
    expect(decide(policy, req(alice, 'teleport', { type: 'report' })).decision).toBe('deny');
    expect(decide(policy, req(alice, 'read', { type: 'spaceship' })).decision).toBe('deny');
    expect(evaluate(req(alice, 'read', { type: 'report' }, { tenantId: 'nowhere' }), { tenant: undefined, platform: undefined })).toMatchObject({ decision: 'deny' });
  });

  it('follows revocations and hierarchy changes at once', () => {
    const p = tenant('acme', setup([{ id: 'write-reports', effect: 'allow', subject: 'role:analyst', resource: 'report', action: 'write' }]));
    expect(decide(p, req(alice, 'write', { type: 'report' })).decision).toBe('allow');
    p.apply({ type: 'policy.role.defined', data: { role: 'senior-analyst', inherits: [] } });
    expect(decide(p, req(alice, 'write', { type: 'report' })).decision).toBe('deny');
    p.apply({ type: 'policy.assignment.granted', data: { assignments: [{ subject: 'user:alice', role: 'analyst' }] } });
    expect(decide(p, req(alice, 'write', { type: 'report' })).decision).toBe('allow');
    p.apply({ type: 'policy.assignment.revoked', data: { assignments: [{ subject: 'user:alice', role: 'analyst' }] } });
    expect(decide(p, req(alice, 'write', { type: 'report' })).decision).toBe('deny');
  });
});

describe('ABAC on subject and resource attributes', () => {
  const policy = tenant('acme', setup([
    {
      id: 'same-department-cleared',
      effect: 'allow',
      subject: 'role:employee',
      resource: 'document',
      action: 'read',
      when: { all: [{ attr: 'subject.department', op: 'eq', ref: 'resource.department' }, { attr: 'subject.clearance', op: 'gte', ref: 'resource.classification' }] },
    },
    { id: 'owner-writes', effect: 'allow', subject: 'role:employee', resource: 'document', action: 'write', when: { attr: 'resource.owner', op: 'eq', ref: 'subject.id' } },
    { id: 'risk-group', effect: 'allow', subject: 'role:employee', resource: 'risk-register', action: 'read', when: { attr: 'subject.groups', op: 'contains', value: 'risk' } },
  ]));
  const doc = (department: string, classification: string) => ({ type: 'document', id: 'd1', attributes: { department, classification } });

  it('allows when the department matches and the clearance reaches the classification', () => {
    expect(decide(policy, req(alice, 'read', doc('finance', 'confidential'))).decision).toBe('allow');
    expect(decide(policy, req(alice, 'read', doc('finance', 'internal'))).decision).toBe('allow');
  });

  it('denies another department, a higher classification, or a missing attribute', () => {
    expect(decide(policy, req(alice, 'read', doc('legal', 'public'))).decision).toBe('deny');
    expect(decide(policy, req(alice, 'read', doc('finance', 'secret'))).decision).toBe('deny');
    expect(decide(policy, req(bob, 'read', doc('finance', 'public'))).decision).toBe('deny'); // bob has no attributes
    expect(decide(policy, req(alice, 'read', { type: 'document', attributes: { department: 'finance' } })).decision).toBe('deny');
  });

  it('compares the owner with the subject, and group membership', () => {
    expect(decide(policy, req(bob, 'write', { type: 'document', id: 'd2', attributes: { owner: 'bob' } })).decision).toBe('allow');
    expect(decide(policy, req(bob, 'write', { type: 'document', id: 'd2', attributes: { owner: 'alice' } })).decision).toBe('deny');
    expect(decide(policy, req(alice, 'read', { type: 'risk-register' })).decision).toBe('allow');
    expect(decide(policy, req(carol, 'read', { type: 'risk-register' })).decision).toBe('deny');
  });

  it('explains which rule decided and which attributes it read', () => {
    const d = decide(policy, req(alice, 'read', doc('finance', 'internal'), { explain: true }));
    expect(d.explain).toEqual({
      rule: 'main/same-department-cleared',
      matched: ['main/same-department-cleared'],
      attributes: { 'subject.department': 'finance', 'resource.department': 'finance', 'subject.clearance': 'confidential', 'resource.classification': 'internal' },
    });
    const denied = decide(policy, req(alice, 'read', doc('legal', 'internal'), { explain: true }));
    expect(denied.explain).toMatchObject({ rule: 'default-deny', matched: [], attributes: { 'resource.department': 'legal' } });
  });
});

describe('explicit deny overrides allow', () => {
  const policy = tenant('acme', setup([
    { id: 'employees-read', effect: 'allow', subject: 'role:employee', resource: 'document', action: 'read' },
    { id: 'no-secret', effect: 'deny', subject: 'role:employee', resource: 'document', action: '*', when: { attr: 'resource.classification', op: 'eq', value: 'secret' } },
    { id: 'alice-blocked', effect: 'deny', subject: 'user:alice', resource: '*', action: 'delete' },
    { id: 'alice-deletes', effect: 'allow', subject: 'user:alice', resource: 'document', action: 'delete' },
  ]));

  it('denies when any matching deny exists, whatever allows', () => {
    expect(decide(policy, req(alice, 'read', { type: 'document', attributes: { classification: 'internal' } })).decision).toBe('allow');
    expect(decide(policy, req(alice, 'read', { type: 'document', attributes: { classification: 'secret' } }))).toMatchObject({ decision: 'deny', rule: 'main/no-secret' });
    expect(decide(policy, req(alice, 'delete', { type: 'document' }))).toMatchObject({ decision: 'deny', rule: 'main/alice-blocked' });
  });
});

describe('field-level decisions', () => {
  const policy = tenant('acme', setup([
    { id: 'read-customers', effect: 'allow', subject: 'role:employee', resource: 'customer', action: 'read' },
    { id: 'mask-iban', effect: 'mask', subject: 'role:employee', resource: 'customer', action: 'read', fields: ['iban', 'phone'] },
    { id: 'unmask-for-finance', effect: 'deny', subject: 'role:employee', resource: 'customer', action: 'read', fields: ['salary'], when: { attr: 'subject.department', op: 'ne', value: 'hr' } },
  ]));

  it('returns readable and masked fields, withholding denied ones', () => {
    const d = decide(policy, req(alice, 'read', { type: 'customer', id: 'c1', fields: ['name', 'iban', 'phone', 'salary'] }));
    expect(d).toMatchObject({ decision: 'allow', fields: { readable: ['name'], masked: ['iban', 'phone'] } });
  });

  it('keeps a field when its withholding condition does not hold', () => {
    // bob has no department: the condition is unknown and the field rule does not apply
    const d = decide(policy, req(bob, 'read', { type: 'customer', fields: ['name', 'salary', 'iban'] }));
    expect(d.fields).toEqual({ readable: ['name', 'salary'], masked: ['iban'] });
  });
});

describe('built-in session roles', () => {
  const policy = tenant('acme', setup([]));
  const session = { type: 'session', id: 's1', attributes: { owner: 'alice', collaborators: ['bob'], viewers: ['carol'] } };
  it.each([
    ['alice', 'read', 'allow'], ['alice', 'write', 'allow'], ['alice', 'share', 'allow'], ['alice', 'archive', 'allow'],
    ['bob', 'read', 'allow'], ['bob', 'write', 'allow'], ['bob', 'share', 'deny'], ['bob', 'archive', 'deny'],
    ['carol', 'read', 'allow'], ['carol', 'write', 'deny'], ['carol', 'archive', 'deny'],
    ['dave', 'read', 'deny'],
  ])('%s may %s: %s', (who, action, outcome) => {
    expect(decide(policy, req({ type: 'user', id: who }, action, session)).decision).toBe(outcome);
  });

  it('lets the owner create the session it is about to own; nobody else', () => {
    const fresh = { type: 'session', attributes: { owner: 'alice', collaborators: [], viewers: [], agents: [] } };
    expect(decide(policy, req({ type: 'user', id: 'alice' }, 'create', fresh)).decision).toBe('allow');
    expect(decide(policy, req({ type: 'user', id: 'bob' }, 'create', fresh)).decision).toBe('deny');
  });

  it("gives an agent working in the session the collaborator's actions, intersected with its user's role", () => {
    const withAgents = { ...session, attributes: { ...session.attributes, agents: ['helper'] } };
    const agentFor = (user: string) => ({ type: 'agent' as const, id: 'helper', actingFor: user });
    // acting for the owner: read and write, never share or archive (the agent's own part)
    expect(decide(policy, req(agentFor('alice'), 'write', withAgents)).decision).toBe('allow');
    expect(decide(policy, req(agentFor('alice'), 'archive', withAgents))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
    // acting for a viewer: read only (the user's part)
    expect(decide(policy, req(agentFor('carol'), 'read', withAgents)).decision).toBe('allow');
    expect(decide(policy, req(agentFor('carol'), 'write', withAgents))).toMatchObject({ decision: 'deny', reason: expect.stringContaining('the user the agent acts for may not') });
    // not working in the session: nothing, even for the owner
    expect(decide(policy, req(agentFor('alice'), 'read', session)).decision).toBe('deny');
    // the agents list names agents, never users (and a user id in it grants a user nothing)
    expect(decide(policy, req({ type: 'user', id: 'helper' }, 'read', withAgents)).decision).toBe('deny');
  });

  it('lets an explicit deny override a session role', () => {
    const p = tenant('acme', setup([{ id: 'frozen', effect: 'deny', subject: 'user:alice', resource: 'session', action: 'write' }]));
    expect(decide(p, req(alice, 'write', session))).toMatchObject({ decision: 'deny', rule: 'main/frozen' });
  });
});

describe('agents: the intersection of the agent and its user', () => {
  const policy = tenant('acme', setup([
    { id: 'analysts-read', effect: 'allow', subject: 'role:analyst', resource: 'report', action: 'read' },
    { id: 'analysts-export', effect: 'allow', subject: 'role:analyst', resource: 'report', action: 'export' },
    { id: 'alice-signs', effect: 'allow', subject: 'user:alice', resource: 'memo', action: 'sign' },
    { id: 'alice-manages-policy', effect: 'allow', subject: 'user:alice', resource: 'policy', action: '*' },
    { id: 'helper-manages-policy', effect: 'allow', subject: 'agent:helper', resource: 'policy', action: '*' },
    { id: 'no-export-for-agents', effect: 'deny', subject: 'agent:helper', resource: 'report', action: 'export' },
    { id: 'read-customers', effect: 'allow', subject: 'role:employee', resource: 'customer', action: 'read' },
    { id: 'agent-customers', effect: 'allow', subject: 'role:analyst', resource: 'customer', action: 'read' },
    { id: 'agent-masks', effect: 'mask', subject: 'agent:helper', resource: 'customer', action: 'read', fields: ['iban'] },
  ]));
  const helperFor = (user: string) => ({ type: 'agent' as const, id: 'helper', actingFor: user });

  it('allows only what both the agent and its user may do', () => {
    expect(decide(policy, req(helperFor('alice'), 'read', { type: 'report' })).decision).toBe('allow');
    expect(decide(policy, req(helperFor('bob'), 'read', { type: 'report' })).decision).toBe('deny'); // bob may not
    expect(decide(policy, req(helperFor('alice'), 'sign', { type: 'memo' })).decision).toBe('deny'); // the agent may not
    expect(decide(policy, req(helperFor('alice'), 'export', { type: 'report' }))).toMatchObject({ decision: 'deny', rule: 'main/no-export-for-agents' });
  });

  it('denies an agent that acts for nobody', () => {
    expect(decide(policy, req({ type: 'agent', id: 'helper' }, 'read', { type: 'report' }))).toMatchObject({ rule: 'agent-without-user' });
  });

  it('never lets an agent change policies, approvals or its guide, whatever the rules say', () => {
    for (const type of ['policy', 'approval', 'guide', 'role', 'assignment']) {
      expect(decide(policy, req(helperFor('alice'), 'write', { type, id: 'helper' }))).toMatchObject({ decision: 'deny', rule: 'agent-immutable' });
    }
    expect(decide(policy, req(alice, 'write', { type: 'policy' })).decision).toBe('allow');
  });

  it('reads the agent’s teams and department from its verified token (issue 12)', () => {
    const teamPolicy = tenant('acme', setup([
      { id: 'platform-reads', effect: 'allow', subject: 'role:analyst', resource: 'build', action: 'read', when: { attr: 'subject.department', op: 'eq', value: 'platform' } },
      { id: 'platform-team', effect: 'allow', subject: 'role:analyst', resource: 'build', action: 'run', when: { attr: 'subject.teams', op: 'contains', value: 'platform' } },
      { id: 'alice-builds', effect: 'allow', subject: 'user:alice', resource: 'build', action: '*' },
    ], [{ type: 'policy.attribute.defined', data: { definition: { name: 'teams', target: 'subject', type: 'string[]' } } }]));
    const helperIn = (teams: string[]) => ({ ...helperFor('alice'), teams, department: teams[0] });
    expect(decide(teamPolicy, req(helperIn(['platform']), 'read', { type: 'build' })).decision).toBe('allow');
    expect(decide(teamPolicy, req(helperIn(['platform']), 'run', { type: 'build' })).decision).toBe('allow');
    expect(decide(teamPolicy, req(helperIn(['data']), 'read', { type: 'build' })).decision).toBe('deny');
    expect(decide(teamPolicy, req(helperIn(['data']), 'run', { type: 'build' })).decision).toBe('deny');
    expect(decide(teamPolicy, req(helperFor('alice'), 'read', { type: 'build' })).decision).toBe('deny'); // no token teams, none stored
  });

  it('reads a user’s teams and department from the verified token over the stored ones; the agent’s own only for the agent (issue 12)', () => {
    const teamPolicy = tenant('acme', setup([
      { id: 'platform-reads', effect: 'allow', subject: 'role:employee', resource: 'build', action: 'read', when: { attr: 'subject.department', op: 'eq', value: 'platform' } },
      { id: 'platform-team', effect: 'allow', subject: 'role:employee', resource: 'build', action: 'run', when: { attr: 'subject.teams', op: 'contains', value: 'platform' } },
    ], [{ type: 'policy.attribute.defined', data: { definition: { name: 'teams', target: 'subject', type: 'string[]' } } }]));
    // alice's stored department is finance: her token's platform wins, and without one the stored value stands
    expect(decide(teamPolicy, req({ ...alice, department: 'platform', teams: ['platform'] }, 'read', { type: 'build' })).decision).toBe('allow');
    expect(decide(teamPolicy, req({ ...alice, department: 'platform', teams: ['platform'] }, 'run', { type: 'build' })).decision).toBe('allow');
    expect(decide(teamPolicy, req(alice, 'read', { type: 'build' })).decision).toBe('deny');
    expect(decide(teamPolicy, req({ ...carol, department: 'data', teams: ['data'] }, 'read', { type: 'build' })).decision).toBe('deny');
    expect(decide(teamPolicy, req({ ...carol, department: 'data', teams: ['data'] }, 'run', { type: 'build' })).decision).toBe('deny');
  });

  it('combines field decisions: masked by either is masked', () => {
    const d = decide(policy, req(helperFor('alice'), 'read', { type: 'customer', fields: ['name', 'iban'] }));
    expect(d.fields).toEqual({ readable: ['name'], masked: ['iban'] });
  });
});

describe('tool-call allowlists', () => {
  const policy = tenant('acme', setup(
    [{ id: 'tools', effect: 'allow', subject: 'role:employee', resource: 'tool', action: 'invoke' }, { id: 'agent-tools', effect: 'allow', subject: 'role:analyst', resource: 'tool', action: 'invoke' }],
    [
      { type: 'policy.tool-allowlist.set', data: { tools: ['search', 'execute_code'] } },
      { type: 'policy.tool-allowlist.set', data: { agent: 'helper', tools: ['search', 'send_email'] } },
    ],
  ));
  const helper = { type: 'agent' as const, id: 'helper', actingFor: 'alice' };

  it('allows a tool only when the tenant and the agent both list it', () => {
    expect(decide(policy, req(helper, 'invoke', { type: 'tool', id: 'search' })).decision).toBe('allow');
    expect(decide(policy, req(helper, 'invoke', { type: 'tool', id: 'execute_code' }))).toMatchObject({ decision: 'deny', rule: 'agent-tool-allowlist' });
    expect(decide(policy, req(helper, 'invoke', { type: 'tool', id: 'send_email' }))).toMatchObject({ decision: 'deny', rule: 'tenant-tool-allowlist' });
    expect(decide(policy, req(alice, 'invoke', { type: 'tool', id: 'execute_code' })).decision).toBe('allow');
    expect(decide(policy, req({ type: 'agent', id: 'other', actingFor: 'alice' }, 'invoke', { type: 'tool', id: 'search' })).rule).toBe('agent-tool-allowlist');
  });
});

describe('critical actions and cross-tenant probes', () => {
  const policy = tenant('acme', setup([
    { id: 'pay', effect: 'allow', subject: 'role:employee', resource: 'payment', action: 'payments.create' },
    { id: 'read', effect: 'allow', subject: 'role:employee', resource: '*', action: 'read' },
  ]));
  const platform = tenant('system', [
    { type: 'policy.role.defined', data: { role: 'platform-auditor', inherits: [] } },
    { type: 'policy.assignment.granted', data: { assignments: [{ subject: 'user:ops', role: 'platform-auditor' }] } },
    { type: 'policy.policy.published', data: { policyId: 'platform', version: 1, rules: [{ id: 'audit-read', effect: 'allow', subject: 'role:platform-auditor', resource: 'audit-log', action: 'read' }] } },
  ]);

  it('answers requires_approval for a critical action, bound to its exact parameters', () => {
    const r = req(alice, 'payments.create', { type: 'payment', id: 'p1' }, { parameters: { amount: 100, payee: 'X' } });
    const d = decide(policy, r);
    expect(d).toMatchObject({ decision: 'requires_approval', rule: 'critical-action', actionHash: actionHash(r) });
    expect(actionHash({ ...r, parameters: { payee: 'X', amount: 100 } })).toBe(d.actionHash); // canonical: key order does not matter
    expect(actionHash({ ...r, parameters: { amount: 101, payee: 'X' } })).not.toBe(d.actionHash);
    expect(actionHash({ ...r, subject: bob })).not.toBe(d.actionHash);
    expect(decide(policy, req(carol, 'payments.create', { type: 'invoice' })).decision).toBe('deny'); // not allowed at all
  });

  it('never lets a tenant subject reach another tenant, and lets only platform roles cross', () => {
    expect(decide(policy, req(alice, 'read', { type: 'report', tenantId: 'globex' }), platform)).toMatchObject({ decision: 'deny', rule: 'cross-tenant' });
    expect(decide(policy, req({ ...alice, tenantId: 'globex' }, 'read', { type: 'report' }), platform)).toMatchObject({ decision: 'deny', rule: 'cross-tenant' });
    const ops = { type: 'user' as const, id: 'ops', tenantId: 'system' };
    expect(decide(policy, req(ops, 'read', { type: 'audit-log', tenantId: 'acme' }), platform).decision).toBe('allow');
    expect(decide(policy, req(ops, 'read', { type: 'report', tenantId: 'acme' }), platform).decision).toBe('deny');
  });
});

describe('the indexed evaluator gives Casbin\'s answers', () => {
  it('agrees with casbin enforce on randomized requests over hierarchy, ABAC and deny rules', async () => {
    const random = seededRandom(42);
    const rand = (n: number) => (random() * n) | 0;
    const types = ['document', 'report', 'invoice'];
    const actions = ['read', 'write', 'delete'];
    const subjects = ['role:employee', 'role:analyst', 'role:senior-analyst', 'role:cfo', 'user:alice', 'user:bob'];
    const conditions = [
      undefined,
      { attr: 'subject.department', op: 'eq' as const, ref: 'resource.department' },
      { attr: 'subject.clearance', op: 'gte' as const, ref: 'resource.classification' },
      { any: [{ attr: 'resource.owner', op: 'eq' as const, ref: 'subject.id' }, { attr: 'resource.sensitivity', op: 'lt' as const, value: 3 }] },
    ];
    const rules: Rule[] = Array.from({ length: 120 }, (_, i) => {
      const when = conditions[rand(conditions.length)];
      return {
        id: `r${i}`,
        effect: rand(5) === 0 ? ('deny' as const) : ('allow' as const),
        subject: subjects[rand(subjects.length)],
        resource: rand(8) === 0 ? '*' : types[rand(types.length)],
        action: rand(8) === 0 ? '*' : actions[rand(actions.length)],
        ...(when ? { when } : {}),
      };
    });
    const policy = tenant('acme', setup(rules));
    const enforcer = await casbinEnforcerFor(policy);
    let allowed = 0;
    for (let i = 0; i < 400; i++) {
      const who = ['alice', 'bob', 'carol', 'nobody'][rand(4)];
      const attributes = { department: ['finance', 'legal'][rand(2)], classification: LEVELS[rand(4)], owner: ['alice', 'bob'][rand(2)], sensitivity: rand(6) };
      const resource = { type: types[rand(types.length)], id: `x${i}`, attributes };
      const action = actions[rand(actions.length)];
      const ours = decide(policy, req({ type: 'user', id: who }, action, resource)).decision === 'allow';
      const theirs = await casbinAllows(enforcer, policy, `user:${who}`, resource.type, action, resource);
      expect({ i, who, action, resource, ours }).toEqual({ i, who, action, resource, ours: theirs });
      if (ours) allowed++;
    }
    expect(allowed).toBeGreaterThan(40); // the sample exercises both answers
    expect(allowed).toBeLessThan(360);
  });
});
