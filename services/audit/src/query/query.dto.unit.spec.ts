import { newEventId } from '@palisade/contracts';
import { parse, unsafeTextProblem } from '../validation';
import { eventsQuerySchema } from './query.dto';
import { decodeCursor, encodeCursor } from './query.repository';

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

describe('audit query input', () => {
  it('decodes the cursors it issues', () => {
    const at = { occurredAt: '2026-01-02T03:04:05.678Z', eventId: newEventId() };
    expect(decodeCursor(encodeCursor(at))).toEqual(at);
  });

  it.each([
    ['an event id of 36 dashes', cursorOf(['2026-01-02T03:04:05.678Z', '-'.repeat(36)])],
    ['an event id of the right length but not a UUID', cursorOf(['2026-01-02T03:04:05.678Z', 'a'.repeat(36)])],
    ['year 0', cursorOf(['0000-01-01T00:00:00.000Z', newEventId()])],
    ['a time that is not RFC 3339 UTC', cursorOf(['Jan 1 2026', newEventId()])],
    ['a third member', cursorOf(['2026-01-02T03:04:05.678Z', newEventId(), 1])],
    ['an object', cursorOf({ occurredAt: '2026-01-02T03:04:05.678Z', eventId: newEventId() })],
    ['not JSON', 'bm90IGpzb24'],
  ])('refuses a cursor with %s as a validation error naming the cursor', (_what, cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(expect.objectContaining({ code: 'validation', message: expect.stringContaining('cursor') }));
  });

  it.each([
    ['tenant', '\u0000'],
    ['tenant', 'a b'],
    ['actor', 'user\u0000'],
    ['actor', '\ud800'],
    ['subject', 'x\u202ey'],
    ['subject', 'line\nbreak'],
    ['type', 'billing.usage.recorded,\u0000'],
    ['from', '0000-01-01T00:00:00Z'],
    ['to', '0001-01-01T00:00:00+01:00'],
  ])('refuses %s = %j with a 400 naming it', (field, value) => {
    expect(() => parse(eventsQuerySchema, { [field]: value }, 'query')).toThrow(expect.objectContaining({ code: 'validation', message: expect.stringContaining(field) }));
  });

  it('accepts ordinary filters', () => {
    expect(parse(eventsQuerySchema, { tenant: 'demo', actor: 'user-1', subject: 'unknown-ab12', from: '2026-01-01T00:00:00Z', type: 'a.b.c,d.e.f' }, 'query')).toMatchObject({ tenant: 'demo', type: ['a.b.c', 'd.e.f'] });
    expect(unsafeTextProblem('Zoë ✓ 名前')).toBeUndefined();
  });
});
