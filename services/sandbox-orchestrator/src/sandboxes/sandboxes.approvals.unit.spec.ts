import type { PalisadeError } from '@palisade/contracts';
import type { AuthorizeRequest } from '@palisade/policy-client';
import { bot, serviceHarness } from '../../test/sandboxes.memory';
import { executionApprovalParameters } from './sandboxes.approvals';

const TOKEN = '01a23c19-4a21-749a-b216-8a7770beb807.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';

describe('approvals of critical executions', () => {
  it('binds an approval to the sandbox and the whole input, whatever the order of its keys; never to the token', () => {
    const a = executionApprovalParameters('sb', { command: ['pay', '100'], env: { A: '1', B: '2' } });
    expect(a).toEqual({ sandboxId: 'sb', inputSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(executionApprovalParameters('sb', { env: { B: '2', A: '1' }, command: ['pay', '100'], approvalToken: TOKEN })).toEqual(a);
    expect(executionApprovalParameters('sb', { command: ['pay', '1000'], env: { A: '1', B: '2' } })).not.toEqual(a);
    expect(executionApprovalParameters('other', { command: ['pay', '100'], env: { A: '1', B: '2' } })).not.toEqual(a);
  });

  it('answers requires_approval with what to ask for, then runs exactly that call with the approval token', async () => {
    const h = serviceHarness();
    let ran = 0;
    h.runtimeExec = () => {
      ran++;
      return { result: Promise.resolve({ exitCode: 0, signal: null, reason: 'exited', stdout: Buffer.from('paid\n'), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false, usage: { cpuSeconds: 0, memoryGbSeconds: 0, peakMemoryBytes: 0, wallSeconds: 0 } }), kill: () => undefined };
    };
    // the tenant made `invoke` critical: allowed only through an approval the policy service redeems
    const redeemed: AuthorizeRequest[] = [];
    h.decide = (r) => {
      if (r.action !== 'invoke') return { decision: 'allow', rule: 'owner', reason: 'ok' };
      if (!r.approvalToken) return { decision: 'requires_approval', rule: 'critical-action', reason: 'invoke is a critical action', actionHash: 'f'.repeat(64) };
      redeemed.push(r);
      return r.approvalToken === TOKEN && redeemed.length === 1 ? { decision: 'allow', rule: 'approval', reason: 'approved' } : { decision: 'deny', rule: 'approval', reason: 'approval token was already used' };
    };
    const sandbox = await h.service.create(bot, 's1', 'small');
    const input = { command: ['/usr/bin/pay', 'acme', '100'] };
    const refused = await h.service.exec(bot, sandbox.id, input).catch((e: PalisadeError) => e);
    expect(refused).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/^policy: invoke requires an approval \(rule critical-action\): ask the policy service/) });
    const parameters = executionApprovalParameters(sandbox.id, input);
    expect((refused as PalisadeError).details).toEqual({
      rule: 'critical-action',
      approval: { action: 'invoke', resource: { type: 'tool', id: 'execute_code' }, parameters, service: 'sandbox-orchestrator', actionHash: 'f'.repeat(64) },
    });
    expect(ran).toBe(0);
    expect(h.repo.events.at(-1)).toMatchObject({ type: 'sandbox-orchestrator.sandbox.exec_refused', data: { action: 'invoke', rule: 'critical-action' } });

    await expect(h.service.exec(bot, sandbox.id, { ...input, approvalToken: TOKEN })).resolves.toMatchObject({ status: 'finished' });
    expect(ran).toBe(1);
    expect(redeemed).toEqual([expect.objectContaining({ action: 'invoke', approvalToken: TOKEN, parameters, resource: expect.objectContaining({ type: 'tool', id: 'execute_code' }) })]);
    // the token is single-use: the policy service refuses it the second time, nothing runs
    await expect(h.service.exec(bot, sandbox.id, { ...input, approvalToken: TOKEN })).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('rule approval') });
    expect(ran).toBe(1);
    expect(JSON.stringify(h.repo.events)).not.toContain(TOKEN.split('.')[1]);
  });
});
