import type { VerificationResult } from '@palisade/audit-log';
import { rangeVerdict, type VerdictInput } from './range-verdict';

const DAY = 24 * 3600 * 1000;
const now = Date.parse('2026-06-01T00:00:00.000Z');
const h = (c: string) => c.repeat(64);
const result = (over: Partial<VerificationResult> = {}): VerificationResult => ({ ok: true, records: 10, checkpoints: 1, partitions: { 0: { first: 1, last: 10, hash: h('a') } }, ...over });
const input = (over: Partial<VerdictInput> = {}): VerdictInput => ({ result: result(), partition: 0, first: { seq: 1, prev: h('0') }, wholePartition: true, before: undefined, nowMs: now, retentionMs: 365 * DAY, ...over });

describe('GET /v1/audit/verify verdict', () => {
  it('is ok when the chain verifies and a checkpoint seals it, and says how many checkpoints it verified', () => {
    expect(rangeVerdict(input({ result: result({ checkpoints: 3 }) }))).toEqual({ status: 'ok', ok: true, checkpointsVerified: 3 });
  });

  it('calls records that no checkpoint seals "unverified", not "ok"', () => {
    expect(rangeVerdict(input({ result: result({ checkpoints: 0 }) }))).toEqual({ status: 'unverified', ok: false, checkpointsVerified: 0 });
    // An empty range has nothing to vouch for.
    expect(rangeVerdict(input({ result: result({ records: 0, checkpoints: 0, partitions: {} }), first: undefined })).status).toBe('ok');
  });

  it('detects a cut head: the partition starts later, but the record before was recorded within the retention', () => {
    const v = rangeVerdict(input({ first: { seq: 5, prev: h('b') }, before: { seq: 4, hash: h('b'), recordedAt: new Date(now - DAY).toISOString() } }));
    expect(v).toMatchObject({ status: 'failed', ok: false, failure: { reason: 'gap', partition: 0, seq: 5, message: expect.stringContaining('head was cut') } });
  });

  it('detects a replaced head: the first record left does not link to what the index recorded before it', () => {
    const v = rangeVerdict(input({ first: { seq: 5, prev: h('c') }, before: { seq: 4, hash: h('b'), recordedAt: new Date(now - 400 * DAY).toISOString() } }));
    expect(v).toMatchObject({ status: 'failed', failure: { reason: 'link_broken', seq: 5 } });
  });

  it('accepts a head that retention removed (the record before is older than the retention), and a range that starts later', () => {
    expect(rangeVerdict(input({ first: { seq: 5, prev: h('b') }, before: { seq: 4, hash: h('b'), recordedAt: new Date(now - 400 * DAY).toISOString() } })).status).toBe('ok');
    expect(rangeVerdict(input({ wholePartition: false, first: { seq: 5, prev: h('b') }, before: { seq: 4, hash: h('x'), recordedAt: new Date(now).toISOString() } })).status).toBe('ok');
  });

  it('keeps the verifier\'s own failure (e.g. a cut tail)', () => {
    const failure = { reason: 'truncated_tail' as const, partition: 0, seq: 12, message: 'cut' };
    expect(rangeVerdict(input({ result: result({ ok: false, failure }) }))).toEqual({ status: 'failed', ok: false, checkpointsVerified: 1, failure });
  });
});
