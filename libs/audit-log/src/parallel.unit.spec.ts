import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  appendToChain,
  ChainVerifier,
  emptyHead,
  keysOf,
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
