import { randomUUID } from 'node:crypto';
import { newEventId } from '@palisade/contracts';
import { IdFilter } from './id-filter';

describe('IdFilter', () => {
  it('never calls an added id absent (no false negatives), UUIDv7 and v4 alike', () => {
    const filter = new IdFilter(50_000);
    const ids = [...Array.from({ length: 25_000 }, () => newEventId()), ...Array.from({ length: 25_000 }, () => randomUUID())];
    for (const id of ids) filter.add(id);
    expect(ids.filter((id) => !filter.mightHave(id))).toEqual([]);
    expect(filter.count).toBe(50_000);
    expect(filter.full).toBe(false);
  });

  it('calls about 1 % of ids never added present at capacity, and says when it is over capacity', () => {
    const filter = new IdFilter(50_000);
    for (let i = 0; i < 50_000; i++) filter.add(newEventId());
    const probes = 100_000;
    let positives = 0;
    for (let i = 0; i < probes; i++) if (filter.mightHave(newEventId())) positives++;
    expect(positives / probes).toBeLessThan(0.02);
    expect(positives).toBeGreaterThan(0);
    filter.add(newEventId());
    expect(filter.full).toBe(true);
  });

  it('an empty filter holds nothing', () => {
    expect(new IdFilter(10).mightHave(randomUUID())).toBe(false);
  });
});
