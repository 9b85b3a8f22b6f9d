import type { SandboxRuntime } from '../runtime/runtime.port';
import { alice, outcome, serviceHarness } from '../../test/sandboxes.memory';
import { LiveOutput, type OutputChunk } from './sandboxes.live-output';

const text = (chunks: OutputChunk[]) => chunks.map((c) => `${c.stream}:${c.data.toString()}`).join('|');

describe('reattaching to an execution’s output', () => {
  it('replays what was printed, in order, then follows; a late follower of an ended one gets all and the end', () => {
    const live = new LiveOutput();
    live.push('stdout', Buffer.from('a'));
    live.push('stderr', Buffer.from('b'));
    const first: OutputChunk[] = [];
    let ended = 0;
    const unfollow = live.follow({ onChunk: (c) => first.push(c), onEnd: () => ended++ });
    live.push('stdout', Buffer.from('c'));
    expect(text(first)).toBe('stdout:a|stderr:b|stdout:c');
    unfollow();
    live.push('stdout', Buffer.from('d'));
    expect(first).toHaveLength(3); // unfollowed
    live.end();
    const late: OutputChunk[] = [];
    live.follow({ onChunk: (c) => late.push(c), onEnd: () => ended++ });
    expect(text(late)).toBe('stdout:a|stderr:b|stdout:c|stdout:d');
    expect(ended).toBe(1);
  });

  it('lets a client that went away follow the running execution by id from the start to its outcome', async () => {
    const h = serviceHarness();
    let emit!: { out: (s: string) => void; done: () => void };
    h.runtimeExec = ((_s: string, _e: string, request: { onStdout?: (c: Buffer) => void }) => ({
      result: new Promise((resolve) => {
        emit = { out: (s) => request.onStdout?.(Buffer.from(s)), done: () => resolve(outcome()) };
      }),
      kill: () => undefined,
    })) as unknown as SandboxRuntime['exec'];
    const sandbox = await h.service.create(alice, 's1', 'small');
    let executionId = '';
    const firstClient: string[] = [];
    const running = h.service.exec(alice, sandbox.id, { command: ['/bin/long'] }, { onStart: (id) => (executionId = id), onStdout: (c) => firstClient.push(c.toString()) });
    await new Promise((r) => setTimeout(r, 10));
    expect(executionId).toMatch(/^[0-9a-f-]{36}$/);
    emit.out('one ');
    // the first client is gone; another follows by id
    const followed: OutputChunk[] = [];
    const following = h.service.follow(alice, sandbox.id, executionId, (c) => followed.push(c));
    await new Promise((r) => setTimeout(r, 10));
    emit.out('two');
    emit.done();
    await running;
    await expect(following).resolves.toMatchObject({ status: 'finished' });
    expect(text(followed)).toBe('stdout:one |stdout:two');
    expect(firstClient).toEqual(['one ', 'two']);
    // who may not read the session does not follow
    h.decide = () => ({ decision: 'deny', rule: 'default-deny', reason: 'no' });
    await expect(h.service.follow(alice, sandbox.id, executionId, () => undefined)).rejects.toMatchObject({ code: 'not_found' });
  });
});
