import type { IndexRow } from '../src/ingest/index-rows';

/** An index row for tests (a billing usage event of agent-1, never erased); `overrides` say what a test needs different. */
export function testIndexRow(seq: number, overrides: Partial<IndexRow> = {}): IndexRow {
  return {
    partition: 0,
    seq,
    offset: BigInt(seq - 1),
    hash: 'ab'.repeat(32),
    eventId: `0193a0b0-0000-7000-8000-${String(seq).padStart(12, '0')}`,
    eventType: 'billing.usage.recorded',
    actionClass: 'other',
    tenantId: 'tenant-1',
    actorType: 'agent',
    actorId: 'agent-1',
    subjectId: null,
    keyId: null,
    occurredAt: '2026-12-05T01:00:00.000Z',
    recordedAt: '2026-12-05T01:00:00.001Z',
    value: `{"seq":${seq}}`,
    ...overrides,
  };
}
