import { GroupCommit } from './group-commit';

/** A commit that takes a turn of the event loop, records its groups and can be told to fail. */
function recorder(fails: (units: string[]) => boolean = () => false) {
  const groups: string[][] = [];
  const inFlight = new Set<string>();
  let overlap = false;
  const commit = async (units: string[]) => {
    groups.push([...units]);
    for (const u of units) {
      if (inFlight.has(u)) overlap = true;
      inFlight.add(u);
    }
    await new Promise((r) => setTimeout(r, 5));
    for (const u of units) inFlight.delete(u);
    if (fails(units)) throw new Error(`refused ${units.join(',')}`);
    return units.map((u) => `ok:${u}`);
  };
  return { commit, groups, overlapped: () => overlap };
}

describe('GroupCommit', () => {
  it('lets units that arrive while a group commits share the next commit, each answered with its own result', async () => {
    const r = recorder();
    const gc = new GroupCommit<string, string>({ commit: r.commit, lanes: 1 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => gc.run(`u${i}`)));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => `ok:u${i}`));
    // The first unit commits alone; the nine that arrived meanwhile share one commit.
    expect(r.groups).toEqual([['u0'], ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9']]);
  });

  it('a failing unit inside a group fails alone: the group is retried unit by unit', async () => {
    const r = recorder((units) => units.includes('bad'));
    const gc = new GroupCommit<string, string>({ commit: r.commit, lanes: 1 });
    const settled = await Promise.allSettled(['a', 'b', 'bad', 'c', 'd'].map((u) => gc.run(u)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(settled[2]).toMatchObject({ reason: new Error('refused bad') });
    expect(settled[3]).toMatchObject({ value: 'ok:c' });
    // a alone; b, bad, c, d together (refused); then each of them on its own.
    expect(r.groups).toEqual([['a'], ['b', 'bad', 'c', 'd'], ['b'], ['bad'], ['c'], ['d']]);
  });

  it('never puts two units with the same key in one group, nor in two groups at once', async () => {
    const r = recorder();
    const gc = new GroupCommit<string, string>({ commit: r.commit, keyOf: (u) => u.split('#')[0], lanes: 3 });
    const units = ['x#1', 'x#2', 'y#1', 'x#3', 'y#2', 'z#1', 'x#4'];
    await expect(Promise.all(units.map((u) => gc.run(u)))).resolves.toEqual(units.map((u) => `ok:${u}`));
    for (const g of r.groups) expect(new Set(g.map((u) => u.split('#')[0])).size).toBe(g.length);
    expect(r.overlapped()).toBe(false);
    expect(r.groups.flat().sort()).toEqual([...units].sort());
  });

  it('caps groups at maxBatch and uses at most `lanes` commits at once', async () => {
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    const gc = new GroupCommit<number, number>({
      commit: async (units) => {
        running++;
        peak = Math.max(peak, running);
        sizes.push(units.length);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return units.map((u) => u * 2);
      },
      lanes: 2,
      maxBatch: 4,
    });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => gc.run(i)));
    expect(results).toEqual(Array.from({ length: 30 }, (_, i) => i * 2));
    expect(peak).toBe(2);
    expect(Math.max(...sizes)).toBe(4);
  });

  it('rejects every unit, without committing again, when the commit answers the wrong number of results', async () => {
    let calls = 0;
    const gc = new GroupCommit<string, string>({
      commit: async (units) => {
        calls++;
        await Promise.resolve();
        return units.slice(1);
      },
      lanes: 1,
    });
    const first = gc.run('a');
    const rest = ['b', 'c'].map((u) => gc.run(u));
    await expect(first).rejects.toThrow('answered 0 results for 1 units');
    for (const p of rest) await expect(p).rejects.toThrow('answered 1 results for 2 units');
    expect(calls).toBe(2);
  });
});
