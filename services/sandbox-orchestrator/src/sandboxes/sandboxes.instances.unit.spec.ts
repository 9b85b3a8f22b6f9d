import type { AuthorizeRequest } from '@palisade/policy-client';
import { alice, serviceHarness } from '../../test/sandboxes.memory';

/**
 * Two orchestrator instances share the tenant's rows: a sandbox made by another instance
 * (its row's `instance` is not this one's) cannot run here (503 naming its instance), but only
 * a caller who may read it learns that: anyone else gets the 404 of a sandbox that does not exist.
 */
describe('SandboxesService: a sandbox living on another instance', () => {
  const deny = (action: string) => (r: AuthorizeRequest) => (r.action === action ? { decision: 'deny' as const, rule: 'viewer', reason: 'no' } : { decision: 'allow' as const, rule: 'test', reason: 'ok' });

  async function remoteSandbox() {
    const h = serviceHarness();
    const made = await h.service.create(alice, 's1', 'small');
    h.repo.rows.get(made.id)!.instance = 'orchestrator-b';
    return { h, id: made.id };
  }

  it('a caller without read gets 404 from every call, naming no instance, and nothing is recorded', async () => {
    const { h, id } = await remoteSandbox();
    h.decide = deny('read');
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['exec', () => h.service.exec(alice, id, { command: ['/bin/true'] })],
      ['upload', () => h.service.upload(alice, id, 'a.txt', Buffer.from('x'))],
      ['download', () => h.service.download(alice, id, 'a.txt')],
      ['get', () => h.service.get(alice, id)],
      ['follow', () => h.service.follow(alice, id, 'e1', () => undefined)],
      ['mintToken', () => h.service.mintToken(alice, id)],
      ['stop', () => h.service.stop(alice, id)],
      ['delete', () => h.service.delete(alice, id)],
    ];
    for (const [name, call] of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect({ name, code: error?.code, message: error?.message }).toEqual({ name, code: 'not_found', message: 'sandbox not found' });
    }
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
  });

  it('a caller refused write or invoke gets the 403 (and exec_refused) as on its own instance', async () => {
    const { h, id } = await remoteSandbox();
    h.decide = deny('invoke');
    await expect(h.service.exec(alice, id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'forbidden' });
    await expect(h.service.upload(alice, id, 'a.txt', Buffer.from('x'))).rejects.toMatchObject({ code: 'forbidden' });
    expect(h.repo.events.map((e) => e.type.split('.').pop())).toEqual(['created', 'exec_refused', 'exec_refused']);
  });

  it('a caller the policy allows learns where it lives (503); an approval token is not spent on it', async () => {
    const { h, id } = await remoteSandbox();
    await expect(h.service.exec(alice, id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'unavailable', message: 'the sandbox lives on orchestrator instance orchestrator-b' });
    await expect(h.service.download(alice, id, 'a.txt')).rejects.toMatchObject({ code: 'unavailable' });
    h.decide = (r) => (r.action === 'invoke' && !r.approvalToken ? { decision: 'requires_approval', rule: 'critical-tool', reason: 'approve' } : { decision: 'allow', rule: 'test', reason: 'ok' });
    h.asked.length = 0;
    await expect(h.service.exec(alice, id, { command: ['/bin/true'], approvalToken: 'the.approval' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(h.asked.filter((r) => r.approvalToken)).toEqual([]);
  });
});
