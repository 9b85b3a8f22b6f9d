import { allOrUndo } from './settled';

/** What a runtime's steps make (cgroup directories) and its undo removes, without I/O. */
function madeDirectories() {
  const made = new Set<string>();
  let release!: () => void;
  const later = new Promise<void>((resolve) => (release = resolve));
  return {
    made,
    release,
    failsAtOnce: () => Promise.reject(new Error('cpu: EACCES')),
    makesLater: async (name: string) => {
      await later;
      made.add(name);
      return name;
    },
    undo: async () => made.clear(),
  };
}

describe('allOrUndo', () => {
  it('undoes only once every step has ended: a step that fails at once leaves nothing behind of one that finishes later', async () => {
    const d = madeDirectories();
    const outcome = allOrUndo([d.failsAtOnce(), d.makesLater('memory/psbx-x')], d.undo).then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    await new Promise((r) => setImmediate(r));
    d.release();
    expect(await outcome).toBe('cpu: EACCES');
    expect([...d.made]).toEqual([]);
  });

  it('rethrows the first failure (in the steps’ order), after the undo', async () => {
    const order: string[] = [];
    const failing = (m: string) => Promise.reject(new Error(m));
    await expect(allOrUndo([failing('first'), failing('second')], async () => void order.push('undo'))).rejects.toThrow('first');
    expect(order).toEqual(['undo']);
  });

  it('gives every value, in order, and undoes nothing when all succeed', async () => {
    let undone = false;
    const values = await allOrUndo<[number, string]>([Promise.resolve(1), Promise.resolve('b')], async () => void (undone = true));
    expect(values).toEqual([1, 'b']);
    expect(undone).toBe(false);
  });
});
