import { SIBLING_TIMEOUT_MS, Siblings, type SiblingChannel } from './siblings';

/** A worker's channel whose primary is the test: what the worker sends is kept, what the primary says is delivered. */
function channel() {
  const sent: unknown[] = [];
  let listener: ((message: unknown) => void) | undefined;
  const ends: SiblingChannel = { worker: 7, send: (message) => void sent.push(message), onMessage: (l) => void (listener = l) };
  return { ends, sent, deliver: (message: unknown) => listener!(message) };
}

describe('Siblings', () => {
  it('alone (no cluster): runs the topic\'s handlers here and resolves at once', async () => {
    const siblings = new Siblings(undefined);
    const seen: unknown[] = [];
    siblings.on('t', (p) => seen.push(p));
    siblings.on('other', () => seen.push('wrong topic'));
    await expect(siblings.broadcast('t', { tenantId: 'a' })).resolves.toEqual({ missed: 0 });
    expect(seen).toEqual([{ tenantId: 'a' }]);
  });

  it('in a worker: runs here at once, asks the primary, and resolves only on its word, with the workers it gave up on', async () => {
    const c = channel();
    const siblings = new Siblings(c.ends);
    const seen: unknown[] = [];
    siblings.on('t', (p) => seen.push(p));
    let settled: { missed: number } | undefined;
    const broadcast = siblings.broadcast('t', 1).then((r) => (settled = r));
    expect(seen).toEqual([1]);
    expect(c.sent).toEqual([{ palisade: 'sibling-broadcast', id: '1', topic: 't', payload: 1 }]);
    await Promise.resolve();
    expect(settled).toBeUndefined();
    // another broadcast's word does not settle this one
    c.deliver({ palisade: 'sibling-done', id: '2', missed: 0 });
    await Promise.resolve();
    expect(settled).toBeUndefined();
    c.deliver({ palisade: 'sibling-done', id: '1', missed: 1 });
    await broadcast;
    expect(settled).toEqual({ missed: 1 });
  });

  it('in a worker: runs a sibling\'s broadcast and says so, a throwing handler not stopping the others; other messages ignored', () => {
    const c = channel();
    const siblings = new Siblings(c.ends);
    const seen: unknown[] = [];
    siblings.on('t', () => {
      throw new Error('broken handler');
    });
    siblings.on('t', (p) => seen.push(p));
    c.deliver({ palisade: 'sibling-broadcast', id: '3\n7', topic: 't', payload: 'x' });
    c.deliver('palisade:migrated');
    c.deliver({ palisade: 'sibling-broadcast', topic: 't' });
    expect(seen).toEqual(['x']);
    expect(c.sent).toEqual([{ palisade: 'sibling-seen', id: '3\n7' }]);
  });

  it('in a worker: resolves with missed -1 when the primary never answers (it bounds its own wait at 2 s)', async () => {
    jest.useFakeTimers();
    try {
      const siblings = new Siblings(channel().ends);
      const broadcast = siblings.broadcast('t', 1);
      await jest.advanceTimersByTimeAsync(SIBLING_TIMEOUT_MS + 2_999);
      let settled: { missed: number } | undefined;
      void broadcast.then((r) => (settled = r));
      await Promise.resolve();
      expect(settled).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await expect(broadcast).resolves.toEqual({ missed: -1 });
    } finally {
      jest.useRealTimers();
    }
  });

  it('gathers: alone, its own answer as worker 0; a responder that throws is an error, a topic without one too', async () => {
    const siblings = new Siblings(undefined);
    siblings.answer('ready', (p) => ({ asked: p }));
    siblings.answer('broken', () => {
      throw new Error('no database');
    });
    await expect(siblings.gather('ready', 1)).resolves.toEqual([{ worker: 0, value: { asked: 1 } }]);
    await expect(siblings.gather('broken', 1)).resolves.toEqual([{ worker: 0, error: 'no database' }]);
    await expect(siblings.gather('nobody', 1)).resolves.toEqual([{ worker: 0, error: 'no answer to nobody here' }]);
  });

  it('gathers in a worker: its own answer first, then the others as the primary passes them; answers a sibling\'s ask', async () => {
    const c = channel();
    const siblings = new Siblings(c.ends);
    siblings.answer('ready', async () => ({ ready: true }));
    const gathered = siblings.gather('ready', null);
    await new Promise((r) => setImmediate(r));
    expect(c.sent).toEqual([{ palisade: 'sibling-gather', id: '1', topic: 'ready', payload: null }]);
    c.deliver({ palisade: 'sibling-gathered', id: '1', answers: [{ worker: 2, value: { ready: false } }, { worker: 3, error: 'worker 3 did not answer within 2000 ms' }] });
    await expect(gathered).resolves.toEqual([
      { worker: 7, value: { ready: true } },
      { worker: 2, value: { ready: false } },
      { worker: 3, error: 'worker 3 did not answer within 2000 ms' },
    ]);
    c.deliver({ palisade: 'sibling-ask', id: '2\n5', topic: 'ready', payload: null });
    await new Promise((r) => setImmediate(r));
    expect(c.sent[1]).toEqual({ palisade: 'sibling-answer', id: '2\n5', value: { ready: true } });
  });
});
