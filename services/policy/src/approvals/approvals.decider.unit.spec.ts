import type { ServiceName } from '@palisade/contracts';
import { DeciderSpecification } from '@palisade/eventsourcing';
import { approvalDecider, type ApprovalCommand } from './approvals.decider';
import type { ApprovalEvent } from './approvals.events';

const t0 = new Date('2026-11-22T10:00:00.000Z');
const at = (ms: number) => ({ tenantId: 'acme', actor: { type: 'user' as const, id: 'x' }, now: new Date(t0.getTime() + ms) });
const H = 'a'.repeat(64);
const TOKEN = 'b'.repeat(64);
const agent = { type: 'agent' as const, id: 'helper', actingFor: 'alice' };
const requested: ApprovalEvent = {
  type: 'policy.approval.requested',
  data: { approvalId: 'ap1', requester: agent, action: 'payments.create', resourceType: 'payment', resourceId: 'p1', actionHash: H, service: 'credential', expiresAt: '2026-11-22T11:00:00.000Z' },
};
const approved: ApprovalEvent = { type: 'policy.approval.approved', data: { approvalId: 'ap1', approver: 'cfo', tokenSha256: TOKEN, expiresAt: '2026-11-22T10:15:00.000Z' } };
const spec = DeciderSpecification.for(approvalDecider);
const cmd = (c: Omit<ApprovalCommand, 'metadata'>, ms = 60_000) => ({ ...c, metadata: at(ms) }) as ApprovalCommand;
const approve = (id: string, type: 'user' | 'agent' = 'user', authorized = true, ms = 60_000) =>
  cmd({ type: 'approve', data: { approver: { type, id }, authorized, tokenSha256: TOKEN, ttlMs: 15 * 60_000 } }, ms);
const consume = (over: Partial<{ subject: typeof agent; actionHash: string; tokenSha256: string; service: ServiceName | undefined; serviceProven: boolean }> = {}, ms = 120_000) =>
  cmd({ type: 'consume', data: { subject: agent, actionHash: H, tokenSha256: TOKEN, service: 'credential', serviceProven: true, ...over } }, ms);

describe('approvals', () => {
  it('records a request with its expiry', () => {
    spec([]).when(cmd({ type: 'request', data: { approvalId: 'ap1', requester: agent, action: 'payments.create', resourceType: 'payment', resourceId: 'p1', actionHash: H, service: 'credential', ttlMs: 3600_000 } }, 0)).then([requested]);
  });

  it('lets an authorized person approve, issuing a token that expires', () => {
    spec([requested]).when(approve('cfo')).then([{ type: 'policy.approval.approved', data: { approvalId: 'ap1', approver: 'cfo', tokenSha256: TOKEN, expiresAt: '2026-11-22T10:16:00.000Z' } }]);
  });

  it('refuses self-approval, approval by an agent, by someone not authorized, and twice', () => {
    spec([requested]).when(approve('helper')).thenThrows('forbidden', 'own request');
    spec([requested]).when(approve('bot', 'agent')).thenThrows('forbidden', 'only a person');
    spec([requested]).when(approve('intern', 'user', false)).thenThrows('forbidden', 'may not decide');
    spec([requested, approved]).when(approve('cfo2')).thenThrows('illegal_state', 'already approved');
    spec([requested]).when(approve('cfo', 'user', true, 3600_001)).thenThrows('illegal_state', 'expired');
    spec([]).when(approve('cfo')).thenThrows('not_found');
  });

  it('keeps four eyes across acting-for: the user the requesting agent acts for may not decide, nor may any agent', () => {
    spec([requested]).when(approve('alice')).thenThrows('forbidden', 'the user an agent acts for may not approve or reject its request');
    spec([requested]).when(cmd({ type: 'reject', data: { approver: { type: 'user', id: 'alice' }, authorized: true } })).thenThrows('forbidden', 'the user an agent acts for');
    const agentFor = (user: string) => ({ type: 'agent' as const, id: 'other-bot', actingFor: user });
    for (const approver of [agentFor('bob'), agentFor('alice'), agentFor('cfo')]) {
      spec([requested]).when(cmd({ type: 'approve', data: { approver, authorized: true, tokenSha256: TOKEN, ttlMs: 60_000 } })).thenThrows('forbidden', 'only a person');
    }
    // a person's own request: no agent in between, another person decides as before
    const byAlice: ApprovalEvent = { ...requested, data: { ...requested.data, requester: { type: 'user', id: 'alice' } } } as ApprovalEvent;
    spec([byAlice]).when(approve('alice')).thenThrows('forbidden', 'own request');
    spec([byAlice]).when(approve('cfo')).then([{ type: 'policy.approval.approved', data: { approvalId: 'ap1', approver: 'cfo', tokenSha256: TOKEN, expiresAt: '2026-11-22T10:16:00.000Z' } }]);
  });

  it('consumes a valid token once, for the exact action, by the requester, before it expires', () => {
    spec([requested, approved]).when(consume()).then([{ type: 'policy.approval.consumed', data: { approvalId: 'ap1', by: 'agent:helper' } }]);
    spec([requested, approved, { type: 'policy.approval.consumed', data: { approvalId: 'ap1', by: 'agent:helper' } }]).when(consume()).thenThrows('forbidden', 'already used');
    spec([requested, approved]).when(consume({ actionHash: 'c'.repeat(64) })).thenThrows('forbidden', 'another action');
    spec([requested, approved]).when(consume({ tokenSha256: 'd'.repeat(64) })).thenThrows('forbidden', 'not valid');
    spec([requested, approved]).when(consume({ subject: { type: 'agent', id: 'other', actingFor: 'alice' } })).thenThrows('forbidden', 'another requester');
    spec([requested, approved]).when(consume({}, 16 * 60_000)).thenThrows('forbidden', 'expired');
    spec([requested]).when(consume()).thenThrows('forbidden', 'not valid');
    spec([requested, { type: 'policy.approval.rejected', data: { approvalId: 'ap1', approver: 'cfo' } }]).when(consume()).thenThrows('forbidden', 'not valid');
  });

  it('lets only the service the approval names redeem it (issue 10)', () => {
    spec([requested, approved]).when(consume({ service: 'llm-router' })).thenThrows('forbidden', 'for the credential service');
    spec([requested, approved]).when(consume({ service: undefined })).thenThrows('forbidden', 'for the credential service');
    const { service: _service, ...unnamed } = (requested as { data: object }).data as { service?: string };
    void _service;
    spec([{ type: 'policy.approval.requested', data: unnamed } as ApprovalEvent, approved]).when(consume()).thenThrows('forbidden', 'for no service');
  });

  it('redeems only for a proven asker: a NATS request naming the service only by its reply inbox consumes nothing (issue 10)', () => {
    const unproven = 'an approval token is redeemed only in a request signed by the credential service (NATS header Palisade-Caller): this one names its asker only by its reply inbox';
    spec([requested, approved]).when(consume({ serviceProven: false })).thenThrows('forbidden', unproven);
    // and it says nothing about the token: used or not, valid or not, the same refusal
    spec([requested, approved, { type: 'policy.approval.consumed', data: { approvalId: 'ap1', by: 'agent:helper' } }]).when(consume({ serviceProven: false })).thenThrows('forbidden', unproven);
    spec([requested, approved]).when(consume({ serviceProven: false, tokenSha256: 'd'.repeat(64) })).thenThrows('forbidden', unproven);
  });
});
