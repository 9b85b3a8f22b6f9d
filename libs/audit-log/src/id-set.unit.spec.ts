import { randomUUID } from 'node:crypto';
import { EventIdSet, isCanonicalUuid } from './id-set';

describe('EventIdSet', () => {
  it('finds every repeat among many UUIDs, across its growth, and keeps the order added', () => {
    const set = new EventIdSet();
    const ids = Array.from({ length: 20_000 }, () => randomUUID());
    for (const id of ids) expect(set.add(id)).toBe(true);
    // each one again, early and late ones alike (after several rehashes)
    for (const id of [ids[0], ids[1], ids[4095], ids[19_999]]) expect(set.add(id)).toBe(false);
    expect(set.size).toBe(20_000);
    expect([...set.values()]).toEqual(ids);
  });

  it('tells apart UUIDs that differ in one hex digit of any word', () => {
    const set = new EventIdSet();
    const base = '0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4b';
    expect(set.add(base)).toBe(true);
    for (const at of [0, 7, 9, 12, 14, 17, 19, 22, 24, 35]) {
      const flipped = base.slice(0, at) + (base[at] === '0' ? '1' : '0') + base.slice(at + 1);
      expect(set.add(flipped)).toBe(true);
      expect(set.add(flipped)).toBe(false);
    }
    expect(set.add(base)).toBe(false);
  });

  it('keeps any other id as text: uppercase, other shapes, unicode; equal only when the text is', () => {
    const set = new EventIdSet();
    const lower = '0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4b';
    const upper = lower.toUpperCase();
    const others = [upper, 'evt-1', '', '0190a3b27c4d7e5f8a6b9c0d1e2f3a4b', 'é', `${lower} `];
    expect(set.add(lower)).toBe(true);
    for (const id of others) expect(set.add(id)).toBe(true);
    for (const id of [lower, ...others]) expect(set.add(id)).toBe(false);
    expect([...set.values()]).toEqual([lower, ...others]);
  });

  it('takes only the canonical lowercase form as a UUID', () => {
    expect(isCanonicalUuid('0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4b')).toBe(true);
    expect(isCanonicalUuid('0190A3B2-7c4d-7e5f-8a6b-9c0d1e2f3a4b')).toBe(false);
    expect(isCanonicalUuid('0190a3b2-7c4d-7e5f-8a6b_9c0d1e2f3a4b')).toBe(false);
    expect(isCanonicalUuid('0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4')).toBe(false);
    expect(isCanonicalUuid('0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4g')).toBe(false);
    expect(isCanonicalUuid('0190a3b2-7c4d-7e5f-8a6b-9c0d1e2f3a4\u0100')).toBe(false);
  });

  it('stays linear when every id lands in the same slot (crafted ids): each lookup walks a bounded run, the rest kept as text', () => {
    const set = new EventIdSet(() => 7);
    const ids = Array.from({ length: 20_000 }, () => randomUUID());
    for (const id of ids) expect(set.add(id)).toBe(true);
    for (const id of ids) expect(set.add(id)).toBe(false);
    expect(set.size).toBe(20_000);
    expect([...set.values()]).toEqual(ids);
    // 40,000 lookups of at most 65 slots each (without the bound: ~200 million for the adds alone)
    expect(set.probes).toBeLessThanOrEqual(40_000 * 65);
  });
});
