import { indexParameters, VALUE_SEPARATOR, type IndexRow } from './index-rows';

const row = (seq: number, value: string, extra: Partial<IndexRow> = {}): IndexRow => ({
  partition: seq % 2,
  seq,
  offset: BigInt(seq * 10),
  hash: 'ab'.repeat(32),
  eventId: `0193a0b0-0000-7000-8000-${String(seq).padStart(12, '0')}`,
  eventType: 'billing.usage.recorded',
  actionClass: 'other',
  tenantId: 't"1\\',
  actorType: 'agent',
  actorId: 'agent-1',
  subjectId: null,
  keyId: null,
  occurredAt: '2026-12-05T01:00:00.000Z',
  recordedAt: '2026-12-05T01:00:00.001Z',
  value,
  ...extra,
});

describe('indexParameters', () => {
  const values = ['{"a":"x\\"y\\\\z\\n"}', '{"b":"é€😀\\u0000"}', '{"c":[1,2.5,null]}'];

  it('gives back every value, in order, and each row its place among them', () => {
    const rows = values.map((v, i) => row(i + 1, v, { subjectId: i === 1 ? 'subject-1' : null }));
    const params = indexParameters(rows)!;
    expect(params.values.split(VALUE_SEPARATOR)).toEqual(values);
    const columns = JSON.parse(params.columns) as Array<Record<string, unknown>>;
    expect(columns.map((c) => c.i)).toEqual([1, 2, 3]);
    expect(columns[1]).toEqual({
      i: 2,
      partition: 0,
      seq: 2,
      kafka_offset: '20',
      hash: 'ab'.repeat(32),
      event_id: rows[1].eventId,
      event_type: 'billing.usage.recorded',
      action_class: 'other',
      tenant_id: 't"1\\',
      actor_type: 'agent',
      actor_id: 'agent-1',
      subject_id: 'subject-1',
      occurred_at: '2026-12-05T01:00:00.000Z',
      recorded_at: '2026-12-05T01:00:00.001Z',
      key_id: null,
    });
    expect(columns.every((c) => !('value' in c))).toBe(true);
  });

  it('refuses rows whose value holds the separator or is empty (they would split wrongly)', () => {
    expect(indexParameters([row(1, values[0]), row(2, `{"x":"a${VALUE_SEPARATOR}b"}`)])).toBeUndefined();
    expect(indexParameters([row(1, values[0]), row(2, '')])).toBeUndefined();
  });
});
