import { copyField, indexCopyData, indexParameters, VALUE_SEPARATOR, type IndexRow } from './index-rows';
import { testIndexRow } from '../../test/index-row';

const row = (seq: number, value: string, extra: Partial<IndexRow> = {}): IndexRow =>
  testIndexRow(seq, { partition: seq % 2, offset: BigInt(seq * 10), tenantId: 't"1\\', value, ...extra });

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

/** A field of COPY's text format read back as PostgreSQL reads it (its escapes; `\N` is null). */
function readCopyField(field: string): string | null {
  if (field === '\\N') return null;
  return field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' })[c] ?? c);
}

describe('indexCopyData', () => {
  const tricky = ['x"y\\z\n\t', 'tab\there', 'line\nbreak\r\n', 'back\\slash\\N', '\\.', 'é€😀\u2028', '', '\\', '\u001e\u0001', 'x'.repeat(100_000)];

  it('gives each field back exactly, tabs, newlines, carriage returns and backslashes included', () => {
    for (const text of tricky) {
      const field = copyField(text);
      expect(field).not.toMatch(/[\t\n\r]/);
      expect(readCopyField(field)).toBe(text);
    }
  });

  it('writes one line a row, its fields in INDEX_COPY_COLUMNS order, null as \\N', () => {
    const rows = tricky.map((v, i) => row(i + 1, v, { subjectId: i === 2 ? 'sub\tject' : null, keyId: i === 2 ? '0193a0b0-0000-7000-8000-000000000001' : null, actorId: i === 3 ? '' : 'agent-1' }));
    const data = indexCopyData('audit\\topic', rows)!.toString('utf8');
    expect(data.endsWith('\n')).toBe(true);
    const lines = data.slice(0, -1).split('\n');
    expect(lines).toHaveLength(rows.length);
    lines.forEach((line, i) => {
      const r = rows[i];
      expect(line.split('\t').map(readCopyField)).toEqual([
        'audit\\topic', String(r.partition), String(r.seq), r.offset.toString(), r.hash, r.eventId, r.eventType, r.actionClass, r.tenantId,
        r.actorType, r.actorId, r.subjectId, r.occurredAt, r.recordedAt, r.value, r.keyId,
      ]);
    });
    expect(lines[3].split('\t')[10]).toBe(''); // an empty text is not null
    expect(lines[2].split('\t')[11]).toBe('sub\\tject');
  });

  it('writes a lone surrogate as U+FFFD, and grows past its first estimate', () => {
    const rows = Array.from({ length: 3 }, (_, i) => row(i + 1, i === 1 ? `{"a":"\ud800${'é'.repeat(5000)}"}` : '{"a":1}'));
    const data = indexCopyData('t', rows)!;
    const lines = data.toString('utf8').slice(0, -1).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1].split('\t')[14]).toBe(`{"a":"\ufffd${'é'.repeat(5000)}"}`);
  });

  it('refuses rows holding U+0000 (no PostgreSQL text can)', () => {
    expect(indexCopyData('t', [row(1, '{"a":1}'), row(2, '{"a":"\u0000"}')])).toBeUndefined();
    expect(indexCopyData('t', [row(1, '{"a":1}', { actorId: 'a\u0000' })])).toBeUndefined();
    // the JSON escape of it is six characters, not U+0000
    expect(indexCopyData('t', [row(1, '{"a":"\\u0000"}')])).toBeDefined();
  });
});
