import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  appendToChain,
  ChainVerifier,
  emptyHead,
  keysOf,
  ParallelChainVerifier,
  planShares,
  sortedListsMeet,
  verifyBatch,
  publicJwk,
  sealRecord,
  signCheckpoint,
  verifyPartitionsInParallel,
  type AuditRecord,
  type Checkpoint,
  type Jwks,
} from './index';

// The workers load the package's build: `tsc -b libs/audit-log` before this test.
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const jwks: Jwks = { keys: [publicJwk(publicKey, 'k1')] };

function chains(partitions: number, perPartition: number): { values: Map<number, string[]>; checkpoints: Checkpoint[] } {
  const values = new Map<number, string[]>();
  const checkpoints: Checkpoint[] = [];
  for (let p = 0; p < partitions; p++) {
    let head = emptyHead(p);
    const list: string[] = [];
    for (let i = 0; i < perPartition; i++) {
      const next = appendToChain(
        head,
        { id: randomUUID(), type: 'billing.usage.recorded', source: 'billing', tenantId: `t-${p}`, actor: { type: 'agent', id: 'a' }, occurredAt: '2026-11-22T10:00:00.000Z', data: { i } },
        '2026-11-22T10:00:01.000Z',
      );
      head = next.head;
      list.push(next.value);
      if (next.record.seq % 50 === 0) checkpoints.push(signCheckpoint({ v: 1, partition: p, seq: head.seq, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, privateKey));
    }
    values.set(p, list);
  }
  return { values, checkpoints };
}

function single(values: Map<number, string[]>, checkpoints: Checkpoint[]) {
  const v = new ChainVerifier({ keys: keysOf(jwks) });
  for (const cp of checkpoints) v.addCheckpoint(cp);
  for (const [, list] of [...values].sort((a, b) => a[0] - b[0])) for (const s of list) if (!v.addRecord(JSON.parse(s))) return v.finish();
  return v.finish();
}

const edit = (values: Map<number, string[]>, p: number, i: number, change: (r: AuditRecord) => AuditRecord) => {
  const list = [...values.get(p)!];
  list[i] = JSON.stringify(change(JSON.parse(list[i]) as AuditRecord));
  return new Map(values).set(p, list);
};

describe('verifyPartitionsInParallel', () => {
  const { values, checkpoints } = chains(4, 200);

  it('accepts intact chains with the same counts as a single verifier', async () => {
    const result = await verifyPartitionsInParallel({ partitions: values, checkpoints, jwks, threads: 2 });
    expect(result.failure).toBeUndefined();
    expect(result).toEqual(single(values, checkpoints));
    expect(result.records).toBe(800);
    expect(result.checkpoints).toBe(16);
  });

  it('reports the same failure as a single verifier: content changed, link broken, gap, bad signature, truncated tail', async () => {
    const cases: Array<{ values: Map<number, string[]>; checkpoints: Checkpoint[]; reason: string; partition: number; seq: number }> = [
      { values: edit(values, 2, 10, (r) => ({ ...r, event: { ...r.event, data: { i: 999 } } })), checkpoints, reason: 'content_changed', partition: 2, seq: 11 },
      { values: edit(values, 1, 30, (r) => sealRecord({ ...r, prev: '1'.repeat(64) })), checkpoints, reason: 'link_broken', partition: 1, seq: 31 },
      { values: new Map(values).set(3, values.get(3)!.filter((_, i) => i !== 77)), checkpoints, reason: 'gap', partition: 3, seq: 79 },
      { values, checkpoints: checkpoints.map((c, i) => (i === 5 ? { ...c, seq: c.seq } : c)).map((c, i) => (i === 5 ? { ...c, hash: '2'.repeat(64) } : c)), reason: 'bad_signature', partition: 1, seq: 100 },
      { values: new Map(values).set(0, values.get(0)!.slice(0, 120)), checkpoints, reason: 'truncated_tail', partition: 0, seq: 150 },
    ];
    for (const c of cases) {
      const result = await verifyPartitionsInParallel({ partitions: c.values, checkpoints: c.checkpoints, jwks, threads: 2 });
      expect(result.ok).toBe(false);
      expect(result.failure).toMatchObject({ reason: c.reason, partition: c.partition, seq: c.seq });
      expect(single(c.values, c.checkpoints).failure).toMatchObject({ reason: c.reason, partition: c.partition, seq: c.seq });
    }
  });

  it('finds an event id repeated in two partitions handled by different workers', async () => {
    const id = (JSON.parse(values.get(0)![5]) as AuditRecord).event.id;
    const copy = edit(values, 3, 40, (r) => sealRecord({ ...r, event: { ...r.event, id } }));
    // Re-link the rest of partition 3 after the edited record, so only the duplicate is wrong.
    const list = copy.get(3)!;
    let prev = (JSON.parse(list[40]) as AuditRecord).hash;
    for (let i = 41; i < list.length; i++) {
      const r = sealRecord({ ...(JSON.parse(list[i]) as AuditRecord), prev });
      prev = r.hash;
      list[i] = JSON.stringify(r);
    }
    const result = await verifyPartitionsInParallel({ partitions: copy, checkpoints: checkpoints.filter((c) => c.partition !== 3), jwks, threads: 2 });
    expect(result.failure).toMatchObject({ reason: 'duplicate_event', partition: 3, seq: 41 });
  });
});

/** The records as a reader gets them from the topic: partitions interleaved, raw bytes. */
function interleaved(values: Map<number, string[]>): Array<{ partition: number; value: Uint8Array }> {
  const out: Array<{ partition: number; value: Uint8Array }> = [];
  const longest = Math.max(...[...values.values()].map((l) => l.length));
  for (let i = 0; i < longest; i += 7) {
    for (const [partition, list] of values) for (const v of list.slice(i, i + 7)) out.push({ partition, value: Buffer.from(v) });
  }
  return out;
}

/** A single ChainVerifier over the same interleaved input. */
function singleInterleaved(values: Map<number, string[]>, checkpoints: Checkpoint[]) {
  const v = new ChainVerifier({ keys: keysOf(jwks) });
  for (const cp of checkpoints) v.addCheckpoint(cp);
  for (const r of interleaved(values)) if (!v.addRecord(JSON.parse(Buffer.from(r.value).toString('utf8')))) break;
  return v.finish();
}

async function streamed(values: Map<number, string[]>, checkpoints: Checkpoint[], threads: number, batchBytes = 4096, warm = false, readerOnly = false) {
  // Batches of ~7 records and 1 buffer in flight per worker: the reader waits for buffers given back.
  const verifier = new ParallelChainVerifier({ jwks, threads, batchBytes, readerOnly, buffersPerWorker: 2 });
  if (warm) await verifier.ready();
  for (const cp of checkpoints) verifier.addCheckpoint(cp);
  for (const r of interleaved(values)) verifier.addRecord(r.partition, r.value);
  return verifier.finish();
}

describe('ParallelChainVerifier (workers started first, fed batches of raw records as they are read)', () => {
  const { values, checkpoints } = chains(5, 300);
  const swap = (list: string[], i: number) => [...list.slice(0, i), list[i + 1], list[i], ...list.slice(i + 2)];

  it('accepts intact chains read interleaved, with the same result as a single verifier, on 1, 2 and 3 threads, the calling thread one of them or only reading (fed before and after they are warm)', async () => {
    const expected = singleInterleaved(values, checkpoints);
    expect(expected.ok).toBe(true);
    for (const readerOnly of [false, true]) {
      for (const threads of [1, 2, 3]) {
        const result = await streamed(values, checkpoints, threads, 4096, threads === 2, readerOnly);
        expect({ threads, readerOnly, result }).toEqual({ threads, readerOnly, result: expected });
        expect(result.records).toBe(1500);
        expect(result.checkpoints).toBe(30);
      }
    }
  });

  it('finds the same fault as a single verifier: tampered record (parsed, and in place), gap, reordering, replayed record, cut tail, id repeated across workers', async () => {
    const id = (JSON.parse(values.get(0)![3]) as AuditRecord).event.id;
    const cases: Array<{ name: string; values: Map<number, string[]>; checkpoints: Checkpoint[]; reason: string; partition: number; seq: number }> = [
      { name: 'tampered', values: edit(values, 4, 120, (r) => ({ ...r, event: { ...r.event, data: { i: -1 } } })), checkpoints, reason: 'content_changed', partition: 4, seq: 121 },
      // Still in JCS form, so the workers hash its bytes (record-bytes.ts) rather than parse it.
      { name: 'tampered in place', values: new Map(values).set(2, values.get(2)!.map((v, i) => (i === 150 ? v.replace('"data":{"i":150}', '"data":{"i":151}') : v))), checkpoints, reason: 'content_changed', partition: 2, seq: 151 },
      { name: 'gap', values: new Map(values).set(1, values.get(1)!.filter((_, i) => i !== 200)), checkpoints, reason: 'gap', partition: 1, seq: 202 },
      { name: 'reordered', values: new Map(values).set(2, swap(values.get(2)!, 60)), checkpoints, reason: 'gap', partition: 2, seq: 62 },
      { name: 'replayed', values: new Map(values).set(3, [...values.get(3)!.slice(0, 90), values.get(3)![40], ...values.get(3)!.slice(90)]), checkpoints, reason: 'out_of_order', partition: 3, seq: 41 },
      { name: 'cut tail', values: new Map(values).set(0, values.get(0)!.slice(0, 260)), checkpoints, reason: 'truncated_tail', partition: 0, seq: 300 },
      // A tail is only known cut at the end; a single verifier stops at the record first (and a reader stopping early cuts the other shares' tails).
      { name: 'tampered, and a lower partition cut', values: edit(new Map(values).set(0, values.get(0)!.slice(0, 260)), 3, 40, (r) => ({ ...r, event: { ...r.event, data: { i: -1 } } })), checkpoints, reason: 'content_changed', partition: 3, seq: 41 },
      { name: 'repeated id', values: edit(values, 1, 299, (r) => sealRecord({ ...r, event: { ...r.event, id } })), checkpoints: checkpoints.filter((c) => !(c.partition === 1 && c.seq === 300)), reason: 'duplicate_event', partition: 1, seq: 300 },
    ];
    for (const c of cases) {
      const expected = singleInterleaved(c.values, c.checkpoints);
      expect({ name: c.name, failure: expected.failure }).toMatchObject({ name: c.name, failure: { reason: c.reason, partition: c.partition, seq: c.seq } });
      for (const [threads, readerOnly] of [[2, false], [3, false], [2, true]] as const) {
        const result = await streamed(c.values, c.checkpoints, threads, 4096, false, readerOnly);
        expect({ name: c.name, threads, readerOnly, ok: result.ok, failure: result.failure }).toMatchObject({ name: c.name, threads, readerOnly, ok: false, failure: { reason: c.reason, partition: c.partition, seq: c.seq } });
      }
    }
  });

  it('a checkpoint of a partition with no record is a cut tail; a failure is known before the end (the reader may stop)', async () => {
    const orphan = signCheckpoint({ v: 1, partition: 9, seq: 5, hash: 'a'.repeat(64), at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, privateKey);
    const result = await streamed(values, [...checkpoints, orphan], 2);
    expect(result.failure).toMatchObject({ reason: 'truncated_tail', partition: 9, seq: 5 });
    expect(singleInterleaved(values, [...checkpoints, orphan]).failure).toMatchObject({ reason: 'truncated_tail', partition: 9, seq: 5 });

    const verifier = new ParallelChainVerifier({ jwks, threads: 2, batchBytes: 1 });
    const tampered = edit(values, 0, 0, (r) => ({ ...r, seq: 2 }));
    for (const cp of checkpoints) verifier.addCheckpoint(cp);
    const records = interleaved(tampered);
    for (const r of records.slice(0, 100)) verifier.addRecord(r.partition, r.value);
    // The worker says so as soon as it met the fault; from then on the reader is told to stop.
    const deadline = Date.now() + 20_000;
    while (!verifier.failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(verifier.failed).toBe(true);
    expect(verifier.addRecord(records[100].partition, records[100].value)).toBe(false);
    expect((await verifier.finish()).failure).toMatchObject({ reason: 'content_changed', partition: 0, seq: 2 });

    // In the calling thread's share (partition 1: the second one placed), it is known at once.
    const here = new ParallelChainVerifier({ jwks, threads: 2 });
    for (const cp of checkpoints) here.addCheckpoint(cp);
    const tamperedHere = interleaved(edit(values, 1, 0, (r) => ({ ...r, seq: 2 })));
    const at = tamperedHere.findIndex((r) => r.partition === 1);
    for (const r of tamperedHere.slice(0, at)) expect(here.addRecord(r.partition, r.value)).toBe(true);
    expect(here.addRecord(tamperedHere[at].partition, tamperedHere[at].value)).toBe(false);
    expect(here.failed).toBe(true);
    for (const r of tamperedHere.slice(at + 1)) here.addRecord(r.partition, r.value);
    expect((await here.finish()).failure).toMatchObject({ reason: 'content_changed', partition: 1, seq: 2 });
  });
});

describe('several faults: the parallel verdict is the one a single verifier meets first (review)', () => {
  const { values, checkpoints } = chains(5, 300);
  const tamper = (v: Map<number, string[]>, p: number, i: number) => edit(v, p, i, (r) => ({ ...r, event: { ...r.event, data: { i: -1 } } }));
  const verdict = (r: { ok: boolean; failure?: unknown }) => ({ ok: r.ok, failure: r.failure });

  /** Streamed on 2 and 3 threads and reader-only (`rounds` times: the shares' timing varies), and in memory on 2 and 3: each equal to a single verifier's verdict over the same order. */
  async function expectSameAsSingle(v: Map<number, string[]>, cps: Checkpoint[], rounds: number) {
    const expected = verdict(singleInterleaved(v, cps));
    expect(expected.ok).toBe(false);
    for (let k = 0; k < rounds; k++) {
      for (const [threads, readerOnly] of [[2, false], [3, false], [2, true]] as const) {
        expect({ threads, readerOnly, verdict: verdict(await streamed(v, cps, threads, 4096, false, readerOnly)) }).toEqual({ threads, readerOnly, verdict: expected });
      }
    }
    const inOrder = verdict(single(v, cps));
    for (const threads of [2, 3]) expect({ threads, verdict: verdict(await verifyPartitionsInParallel({ partitions: v, checkpoints: cps, jwks, threads })) }).toEqual({ threads, verdict: inOrder });
    return { interleaved: expected.failure, inOrder: inOrder.failure };
  }

  it('A: records tampered in partition 0 at index 250 and partition 3 at index 40: read interleaved, partition 3 first', async () => {
    const seen = await expectSameAsSingle(tamper(tamper(values, 0, 250), 3, 40), checkpoints, 3);
    expect(seen.interleaved).toMatchObject({ reason: 'content_changed', partition: 3, seq: 41 });
    expect(seen.inOrder).toMatchObject({ reason: 'content_changed', partition: 0, seq: 251 });
  });

  it('B: a bad signature on a partition 3 checkpoint and a record tampered in partition 0: the checkpoint, checked before any record', async () => {
    const cps = checkpoints.map((c) => (c.partition === 3 && c.seq === 100 ? { ...c, hash: '2'.repeat(64) } : c));
    const seen = await expectSameAsSingle(tamper(values, 0, 5), cps, 2);
    expect(seen.interleaved).toMatchObject({ reason: 'bad_signature', partition: 3, seq: 100 });
    expect(seen.inOrder).toMatchObject({ reason: 'bad_signature', partition: 3, seq: 100 });
  });

  it('C: two cut tails, partition 2\'s checkpoints given first: the lowest partition, whatever the checkpoint order', async () => {
    const cps = [...checkpoints.filter((c) => c.partition === 2), ...checkpoints.filter((c) => c.partition !== 2)];
    const v = new Map(values).set(0, values.get(0)!.slice(0, 260)).set(2, values.get(2)!.slice(0, 260));
    const seen = await expectSameAsSingle(v, cps, 1);
    expect(seen.interleaved).toMatchObject({ reason: 'truncated_tail', partition: 0, seq: 300 });
    expect(verdict(singleInterleaved(v, checkpoints))).toEqual(verdict(singleInterleaved(v, cps)));
  });

  it('an id repeated across shares, met before a link it broke and a tamper in another share', async () => {
    const id = (JSON.parse(values.get(0)![3]) as AuditRecord).event.id;
    // Partition 1's record at index 20 repeats partition 0's id (read earlier); partition 4 tampered later in the input.
    const v = tamper(edit(values, 1, 20, (r) => sealRecord({ ...r, event: { ...r.event, id } })), 4, 100);
    await expectSameAsSingle(v, checkpoints.filter((c) => c.partition !== 1), 1);
  });

  it('a checkpoint given late, after records of its share not yet handed over: checked after them, as a single verifier does', async () => {
    const late = checkpoints.find((c) => c.partition === 1 && c.seq === 50)!;
    const records = interleaved(values);
    // Right after partition 1's seq 52 (seq 50-56 come in one run of 7): a single verifier has passed seq 50.
    const after = records.findIndex((r) => r.partition === 1 && (JSON.parse(Buffer.from(r.value).toString('utf8')) as AuditRecord).seq === 52);
    const one = new ChainVerifier({ keys: keysOf(jwks) });
    for (const cp of checkpoints) if (cp !== late) one.addCheckpoint(cp);
    records.slice(0, after + 1).forEach((r) => one.addRecord(JSON.parse(Buffer.from(r.value).toString('utf8'))));
    one.addCheckpoint(late);
    records.slice(after + 1).forEach((r) => one.addRecord(JSON.parse(Buffer.from(r.value).toString('utf8'))));
    const expected = verdict(one.finish());
    expect(expected.failure).toMatchObject({ reason: 'malformed', partition: 1, seq: 50 });
    for (const [threads, readerOnly] of [[2, false], [3, false], [2, true]] as const) {
      const verifier = new ParallelChainVerifier({ jwks, threads, batchBytes: 1 << 16, readerOnly });
      for (const cp of checkpoints) if (cp !== late) verifier.addCheckpoint(cp);
      records.slice(0, after + 1).forEach((r) => verifier.addRecord(r.partition, r.value));
      verifier.addCheckpoint(late);
      records.slice(after + 1).forEach((r) => verifier.addRecord(r.partition, r.value));
      expect({ threads, readerOnly, verdict: verdict(await verifier.finish()) }).toEqual({ threads, readerOnly, verdict: expected });
    }
  });
});

describe('the parts of the hand-over', () => {
  it('sortedListsMeet: true only when a hash is in two of the lists', () => {
    const f = (...lists: number[][]) => sortedListsMeet(lists.map((l) => Float64Array.from(l)));
    expect(f([1, 3, 5], [2, 4, 6])).toBe(false);
    expect(f([1, 3, 5], [2, 3])).toBe(true);
    expect(f([1, 9], [2, 8], [3, 9])).toBe(true);
    expect(f([1, 9], [2, 8], [3, 7])).toBe(false);
    expect(f([], [1])).toBe(false);
    expect(f([4, 4])).toBe(false);
    expect(f([2 ** 51 + 1], [2 ** 51 + 1])).toBe(true);
  });

  it('verifyBatch: records in place in one buffer, the index of the one where a failure was met', () => {
    const { values } = chains(1, 30);
    const pack = (list: string[]) => {
      const bytes = Buffer.from(list.join(''));
      const ends = new Uint32Array(list.length);
      let at = 0;
      list.forEach((v, i) => (ends[i] = at += Buffer.byteLength(v)));
      return { bytes, ends, partitions: new Int32Array(list.length) };
    };
    const good = pack(values.get(0)!);
    expect(verifyBatch(new ChainVerifier({ keys: keysOf(jwks) }), good.bytes, good.ends, good.partitions, 30)).toBe(-1);
    const bad = pack(edit(values, 0, 17, (r) => ({ ...r, recordedAt: '2026-11-22T10:00:09.000Z' })).get(0)!);
    const verifier = new ChainVerifier({ keys: keysOf(jwks) });
    expect(verifyBatch(verifier, bad.bytes, bad.ends, bad.partitions, 30)).toBe(17);
    expect(verifier.failed).toMatchObject({ reason: 'content_changed', partition: 0, seq: 18 });
  });
});

describe('planShares (which thread verifies which partition)', () => {
  // the audit benchmark's partitions of 2026-12-05: one worker (share 0), the calling thread (share 1)
  const sizes = new Map([[0, 10750], [1, 1792], [2, 10750], [3, 8958], [4, 3584], [5, 7167]]);
  const recordsOf = (owners: Map<number, number>, share: number) => [...owners].filter(([, s]) => s === share).reduce((n, [p]) => n + sizes.get(p)!, 0);

  it('gives the calling thread fewer records than a worker, as it also hands the worker its records', () => {
    const owners = planShares(sizes, 2, 1);
    expect(owners.size).toBe(6);
    const local = recordsOf(owners, 1);
    const worker = recordsOf(owners, 0);
    expect(local).toBeLessThan(worker);
    // the calling thread's time (its records and the hand-over) within a partition of the worker's
    expect(Math.abs(local + 0.17 * worker - worker)).toBeLessThanOrEqual(1792);
  });

  it('spreads by size alone when every share is a worker (a reader only)', () => {
    const owners = planShares(sizes, 2, undefined);
    expect(Math.abs(recordsOf(owners, 0) - recordsOf(owners, 1))).toBeLessThanOrEqual(1);
  });

  it('keeps partitions already placed where they are, and counts them', () => {
    const owners = planShares(sizes, 2, 1, new Map([[0, 1], [2, 1]]));
    expect(owners.has(0)).toBe(false);
    expect(owners.has(2)).toBe(false);
    // 21,500 records already on the calling thread: every other partition goes to the worker
    expect([...owners.values()].every((s) => s === 0)).toBe(true);
  });
});
