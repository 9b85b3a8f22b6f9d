import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import {
  appendToChain,
  canonicalJson,
  ChainVerifier,
  emptyHead,
  keysOf,
  publicJwk,
  recordHash,
  sealRecord,
  signCheckpoint,
  verifyNdjsonFile,
  ZERO_HASH,
  type AuditRecord,
  type Checkpoint,
  type ChainHead,
  type RecordedEvent,
} from './index';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keys = keysOf({ keys: [publicJwk(publicKey, 'k1')] });

let n = 0;
function event(tenantId: string): RecordedEvent {
  n++;
  return {
    id: `0193a000-0000-7000-8000-${String(n).padStart(12, '0')}`,
    type: 'credential.secret.read',
    source: 'credential',
    tenantId,
    actor: { type: 'user', id: `u-${n}` },
    occurredAt: '2026-11-22T10:00:00.000Z',
    data: { n, note: 'é ü 😀' },
  };
}

/** Two partitions of 30 records, checkpoints at seq 10, 20 and 30 of each. */
function chain(): { records: AuditRecord[]; checkpoints: Checkpoint[] } {
  const records: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  for (const partition of [0, 1]) {
    let head: ChainHead = emptyHead(partition);
    for (let i = 0; i < 30; i++) {
      const next = appendToChain(head, event(`t${partition}`), '2026-11-22T10:00:01.000Z');
      records.push(next.record);
      head = next.head;
      if (head.seq % 10 === 0) {
        checkpoints.push(signCheckpoint({ v: 1, partition, seq: head.seq, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, privateKey));
      }
    }
  }
  return { records, checkpoints };
}

function verify(records: readonly unknown[], checkpoints: readonly unknown[], allowLaterStart = false) {
  const verifier = new ChainVerifier({ keys, allowLaterStart });
  for (const c of checkpoints) verifier.addCheckpoint(c);
  for (const r of records) verifier.addRecord(r);
  return verifier.finish();
}

const reseal = (r: AuditRecord): AuditRecord => sealRecord({ ...r, hash: undefined } as unknown as AuditRecord);

describe('audit log format', () => {
  it('hashes the RFC 8785 canonical JSON of the record without hash', () => {
    const record = sealRecord({ v: 1, partition: 2, seq: 1, prev: ZERO_HASH, recordedAt: '2026-11-22T10:00:00.000Z', event: { ...event('acme'), data: { b: 1, a: [1.5, 'x'] } } });
    const { hash, ...rest } = record;
    const text = JSON.stringify(rest, Object.keys(rest).sort());
    // Independent check of the canonical form: members sorted at every level, no spaces.
    expect(canonicalJson(rest)).toMatch(/^\{"event":\{"actor":\{"id":"u-\d+","type":"user"\},"data":\{"a":\[1.5,"x"\],"b":1\},"id":/);
    expect(canonicalJson(rest)).toContain(',"partition":2,"prev":"0000');
    expect(hash).toBe(createHash('sha256').update(canonicalJson(rest)).digest('hex'));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(text).not.toBe(canonicalJson(rest)); // JSON.stringify with a top-level key list is not JCS
  });

  it('appends with the hash of the record without hash, and a topic value that is the canonical JSON of the whole record', () => {
    let head: ChainHead = { partition: 4, seq: 41, hash: 'a'.repeat(64) };
    for (const data of [{}, { b: 1, a: [1.5, 'x', null, true] }, { 'é': 'ü\u2028"\\', z: { y: -0.000001, x: 1e21 } }]) {
      const next = appendToChain(head, { ...event('acme'), data, personal: { ciphertext: 'q'.repeat(10) } }, '2026-11-22T10:00:00.123Z');
      expect(next.record).toMatchObject({ v: 1, partition: 4, seq: head.seq + 1, prev: head.hash });
      expect(next.record.hash).toBe(recordHash(next.record));
      expect(next.value).toBe(canonicalize(next.record));
      expect(JSON.parse(next.value)).toEqual(next.record);
      expect(next.head).toEqual({ partition: 4, seq: head.seq + 1, hash: next.record.hash });
      head = next.head;
    }
  });

  it('canonicalizes numbers and strings as RFC 8785 says', () => {
    expect(canonicalJson({ b: 1e21, a: 0.1, c: -0, d: '\u2028\u00e9\n' })).toBe('{"a":0.1,"b":1e+21,"c":0,"d":"\u2028é\\n"}');
    expect(canonicalJson({ '\u00e9': 1, z: 2, A: 3 })).toBe('{"A":3,"z":2,"é":1}');
  });

  it('verifies an untouched chain and counts records and checkpoints', () => {
    const { records, checkpoints } = chain();
    const result = verify(records, checkpoints);
    expect(result).toMatchObject({ ok: true, records: 60, checkpoints: 6 });
    expect(result.partitions[0]).toMatchObject({ first: 1, last: 30 });
    expect(result.partitions[1]).toMatchObject({ first: 1, last: 30 });
  });

  it('catches a changed record', () => {
    const { records, checkpoints } = chain();
    records[5] = { ...records[5], event: { ...records[5].event, data: { n: 0 } } };
    expect(verify(records, checkpoints).failure).toMatchObject({ reason: 'content_changed', partition: 0, seq: 6 });
  });

  it('catches a broken link even when the changed record was re-hashed', () => {
    const { records, checkpoints } = chain();
    records[35] = reseal({ ...records[35], prev: 'a'.repeat(64) });
    expect(verify(records, checkpoints).failure).toMatchObject({ reason: 'link_broken', partition: 1, seq: 6 });
  });

  it('catches a gap, a repeated seq and a chain that does not start at 1', () => {
    const { records, checkpoints } = chain();
    expect(verify([...records.slice(0, 4), ...records.slice(5)], checkpoints).failure).toMatchObject({ reason: 'gap', partition: 0, seq: 6 });
    expect(verify([...records.slice(0, 5), records[4], ...records.slice(5)], checkpoints).failure).toMatchObject({ reason: 'out_of_order', partition: 0, seq: 5 });
    expect(verify(records.slice(3), []).failure).toMatchObject({ reason: 'gap', partition: 0, seq: 4 });
    expect(verify(records.slice(3), [], true).ok).toBe(true);
  });

  it('catches an event recorded twice, although each record is well chained', () => {
    const { records } = chain();
    const p0 = records.slice(0, 30);
    const dup = appendToChain({ partition: 0, seq: 30, hash: p0[29].hash }, p0[3].event, '2026-11-22T10:00:03.000Z').record;
    expect(verify([...p0, dup], []).failure).toMatchObject({ reason: 'duplicate_event', partition: 0, seq: 31 });
  });

  it('catches a forged or unknown-key checkpoint, and one that seals another hash', () => {
    const { records, checkpoints } = chain();
    const forged = [...checkpoints];
    forged[1] = { ...forged[1], seq: 19 };
    expect(verify(records, forged).failure).toMatchObject({ reason: 'bad_signature', partition: 0, seq: 19 });
    const other = generateKeyPairSync('ed25519').privateKey;
    const foreign = signCheckpoint({ v: 1, partition: 0, seq: 10, hash: records[9].hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, other);
    expect(verify(records, [foreign]).failure).toMatchObject({ reason: 'bad_signature', partition: 0, seq: 10 });
    const unknown = signCheckpoint({ v: 1, partition: 0, seq: 10, hash: records[9].hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k9' }, privateKey);
    expect(verify(records, [unknown]).failure).toMatchObject({ reason: 'bad_signature' });
    const wrongHash = signCheckpoint({ v: 1, partition: 0, seq: 10, hash: records[8].hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, privateKey);
    expect(verify(records, [wrongHash]).failure).toMatchObject({ reason: 'checkpoint_mismatch', partition: 0, seq: 10 });
  });

  it('catches a cut tail through the last checkpoint', () => {
    const { records, checkpoints } = chain();
    const cut = records.filter((r) => !(r.partition === 1 && r.seq > 25));
    expect(verify(cut, checkpoints).failure).toMatchObject({ reason: 'truncated_tail', partition: 1, seq: 30 });
    const noPartition = records.filter((r) => r.partition !== 1);
    expect(verify(noPartition, checkpoints).failure).toMatchObject({ reason: 'truncated_tail', partition: 1, seq: 10 });
  });

  it('refuses records with extra or missing members', () => {
    const { records } = chain();
    expect(verify([{ ...records[0], extra: 1 }], []).failure).toMatchObject({ reason: 'malformed', partition: 0, seq: 1 });
    const { recordedAt: _drop, ...missing } = records[0];
    expect(verify([missing], []).failure?.reason).toBe('malformed');
    expect(recordHash(records[0])).toBe(records[0].hash);
  });

  it('reports a record holding a number JCS cannot write (1e999 reads as Infinity) as malformed, instead of throwing', () => {
    const { records } = chain();
    const text = JSON.stringify(records[1]).replace('"data":{"n":', '"data":{"big":1e999,"n":');
    const verifier = new ChainVerifier({ keys });
    verifier.addRecord(records[0]);
    expect(verifier.addRecord(JSON.parse(text))).toBe(false);
    expect(verifier.finish().failure).toMatchObject({ reason: 'malformed', partition: 0, seq: 2 });
    const bytes = new ChainVerifier({ keys });
    bytes.addRecordBytes(Buffer.from(JSON.stringify(records[0])));
    expect(bytes.addRecordBytes(Buffer.from(text))).toBe(false);
    expect(bytes.finish().failure).toMatchObject({ reason: 'malformed', partition: 0, seq: 2 });
  });

  it('verifies NDJSON exports with checkpoints anywhere in the file, and names a broken line', async () => {
    const { records, checkpoints } = chain();
    const dir = mkdtempSync(join(tmpdir(), 'audit-ndjson-'));
    const good = join(dir, 'good.ndjson');
    writeFileSync(good, [...records, ...checkpoints].map((x) => JSON.stringify(x)).join('\n') + '\n');
    expect(await verifyNdjsonFile(good, { keys })).toMatchObject({ ok: true, records: 60, checkpoints: 6 });
    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, `${JSON.stringify(records[0])}\n{"v":1,\n`);
    expect((await verifyNdjsonFile(bad, { keys })).failure).toMatchObject({ reason: 'malformed', message: 'line 2 is not JSON' });
  });
});
