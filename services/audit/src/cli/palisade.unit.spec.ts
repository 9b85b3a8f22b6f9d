import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToChain, checkpointKeyId, emptyHead, generateCheckpointKeyPair, publicJwk, sealRecord, signCheckpoint, type AuditRecord, type ChainHead, type Checkpoint } from '@palisade/audit-log';
import { run } from './palisade';

// `palisade audit verify --file` on exports tampered with in each way the contract names.
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const dir = mkdtempSync(join(tmpdir(), 'audit-cli-'));
const keysFile = join(dir, 'keys.json');
// An SM2 deployment's key (addendum), published next to the Ed25519 one: kid `sm2:<thumbprint>`.
const sm2 = generateCheckpointKeyPair('sm2');
const sm2Jwk = publicJwk(sm2.publicKey, 'pending');
const sm2Kid = checkpointKeyId(sm2Jwk);
writeFileSync(keysFile, JSON.stringify({ keys: [publicJwk(publicKey, 'k1'), { ...sm2Jwk, kid: sm2Kid }] }));

function exportOf(keyId = 'k1', signingKey = privateKey): { records: AuditRecord[]; checkpoints: Checkpoint[] } {
  const records: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  for (const partition of [0, 1]) {
    let head: ChainHead = emptyHead(partition);
    for (let i = 1; i <= 20; i++) {
      const event = { id: `0193a000-0000-7000-8000-${String(partition * 100 + i).padStart(12, '0')}`, type: 'auth.session.created', source: 'auth', tenantId: `t${partition}`, actor: { type: 'user', id: 'u' }, occurredAt: '2026-11-22T10:00:00.000Z', data: { i } };
      const next = appendToChain(head, event, '2026-11-22T10:00:01.000Z');
      records.push(next.record);
      head = next.head;
      if (i % 10 === 0) checkpoints.push(signCheckpoint({ v: 1, partition, seq: i, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId }, signingKey));
    }
  }
  return { records, checkpoints };
}

async function verify(lines: unknown[]): Promise<{ code: number; out: string }> {
  const file = join(dir, `export-${Math.random().toString(36).slice(2)}.ndjson`);
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
  const out: string[] = [];
  const code = await run(['audit', 'verify', '--file', file, '--keys', keysFile], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
  return { code, out: out.join('\n') };
}

describe('palisade audit verify --file', () => {
  it('accepts an untouched export and prints the counts', async () => {
    const { records, checkpoints } = exportOf();
    expect(await verify([...checkpoints, ...records])).toEqual({ code: 0, out: 'OK: verified 40 record(s) in 2 partition(s) and 4 checkpoint(s)' });
  });

  const cases: Array<[string, (x: ReturnType<typeof exportOf>) => unknown[], RegExp]> = [
    ['content changed', ({ records, checkpoints }) => (records[3].event.data = { i: 99 }, [...records, ...checkpoints]), /FAILED at partition 0 seq 4: content changed/],
    ['link broken', ({ records, checkpoints }) => ((records[24] = sealRecord({ ...records[24], prev: 'f'.repeat(64), hash: undefined } as never)), [...records, ...checkpoints]), /FAILED at partition 1 seq 5: link broken/],
    ['gap', ({ records, checkpoints }) => [...records.filter((_, i) => i !== 7), ...checkpoints], /FAILED at partition 0 seq 9: gap/],
    ['duplicate event', ({ records, checkpoints }) => {
      const p0 = records.slice(0, 20);
      const dup = appendToChain({ partition: 0, seq: 20, hash: p0[19].hash }, p0[0].event, '2026-11-22T10:00:05.000Z').record;
      return [...p0, dup, ...records.slice(20), ...checkpoints];
    }, /FAILED at partition 0 seq 21: duplicate event/],
    ['bad signature', ({ records, checkpoints }) => [...records, ...checkpoints.map((c, i) => (i === 1 ? { ...c, at: '2026-11-22T11:00:00.000Z' } : c))], /FAILED at partition 0 seq 20: bad signature/],
    ['truncated tail', ({ records, checkpoints }) => [...records.filter((r) => !(r.partition === 1 && r.seq > 15)), ...checkpoints], /FAILED at partition 1 seq 20: truncated tail/],
  ];

  it.each(cases)('catches %s, names partition and seq, exits 1', async (_name, tamper, expected) => {
    const result = await verify(tamper(exportOf()));
    expect(result.code).toBe(1);
    expect(result.out).toMatch(expected);
    expect(result.out).toMatch(/verified before the failure: \d+ record\(s\)/);
  });

  it('verifies an export whose checkpoints are signed with SM2, and catches a tampered SM2 checkpoint', async () => {
    const { records, checkpoints } = exportOf(sm2Kid, sm2.privateKey);
    expect(checkpoints[0].keyId).toMatch(/^sm2:/);
    expect(await verify([...checkpoints, ...records])).toEqual({ code: 0, out: 'OK: verified 40 record(s) in 2 partition(s) and 4 checkpoint(s)' });
    const tampered = await verify([...records, ...checkpoints.map((c, i) => (i === 3 ? { ...c, hash: records[38].hash } : c))]);
    expect(tampered.code).toBe(1);
    expect(tampered.out).toMatch(/FAILED at partition 1 seq 20: bad signature/);
  });

  it('exits 2 on bad usage', async () => {
    const out: string[] = [];
    expect(await run(['audit', 'verify', '--keys', keysFile], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} })).toBe(2);
    expect(out.join('\n')).toContain('usage: palisade audit verify');
  });

  it.each(['0', '1.5', 'two', '65'])('exits 2 naming --threads when it is %s', async (threads) => {
    const out: string[] = [];
    expect(await run(['audit', 'verify', '--brokers', '127.0.0.1:1', '--keys', keysFile, '--threads', threads], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} })).toBe(2);
    expect(out.join('\n')).toContain('--threads must be a whole number from 1 to 64');
  });
});
