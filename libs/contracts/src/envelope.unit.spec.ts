import { buildEvent, clip, consumedEventSchema, newEventId, systemEventContext, validateConsumed, validateForPublish, MAX_EVENT_BYTES } from './envelope';
import { eventSubject, serviceOfEventType } from './index';

const ctx = systemEventContext('credential');
const valid = () =>
  buildEvent(ctx, {
    type: 'credential.secret.read',
    tenantId: 'acme',
    actor: { type: 'agent', id: 'agent-7' },
    data: { secretId: 's-1', tool: 'gerrit' },
  });

describe('event envelope', () => {
  it('accepts a well-formed event with a UUIDv7 id and millisecond UTC time', () => {
    const event = valid();
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(event.occurredAt).toMatch(/\.\d{3}Z$/);
    expect(validateForPublish(event)).toEqual({ ok: true, event });
  });

  it.each([
    ['id', { id: '3b241101-e2bb-4255-8caf-4136c566a962' }, 'id: must be a lowercase UUIDv7'],
    ['type with unknown service', { type: 'mailer.mail.sent' }, 'type:'],
    ['type with two segments', { type: 'credential.read' }, 'type:'],
    ['source not matching type', { source: 'auth' }, 'source: must be the service named by type'],
    ['tenant', { tenantId: 'a b' }, 'tenantId:'],
    ['actor type', { actor: { type: 'robot', id: 'x' } }, 'actor.type:'],
    ['occurredAt without ms', { occurredAt: '2026-11-22T10:00:00Z' }, 'occurredAt:'],
    ['occurredAt with offset', { occurredAt: '2026-11-22T10:00:00.000+01:00' }, 'occurredAt:'],
    ['data not an object', { data: 'x' }, 'data:'],
  ])('refuses a bad %s and names the member', (_label, patch, problem) => {
    const result = validateForPublish({ ...valid(), ...patch });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join('\n')).toContain(problem);
  });

  it('refuses unknown members at publish but keeps them at consume', () => {
    const extended = { ...valid(), extra: 1 };
    expect(validateForPublish(extended).ok).toBe(false);
    const consumed = validateConsumed(extended);
    expect(consumed.ok && (consumed.event as unknown as { extra: number }).extra).toBe(1);
  });

  it('takes a plain event by the hand check (no copy): it knows every member of the schema', () => {
    // Fails when envelopeShape gains a member the hand check does not know (it is then off, and zod copies).
    const event = JSON.parse(JSON.stringify(valid()));
    const result = validateConsumed(event);
    expect(result.ok && result.event).toBe(event);
  });

  it('accepts and refuses at consume exactly as the schema does, with its problems and its event', () => {
    const json = (patch: Record<string, unknown>) => JSON.stringify({ ...valid(), ...patch });
    const sealed = { subjectId: 'u-1', keyId: '0b7c1e1a-5c2d-4e8f-9a1b-2c3d4e5f6a7b', alg: 'A256GCM', sealed: 'abc_-' };
    const texts = [
      json({}),
      json({ extra: 1, more: { a: 1 } }),
      json({ personal: { subjectId: 'u-1', data: { email: 'a@b.c' } } }),
      json({ personal: sealed }),
      json({ personal: { ...sealed, alg: 'none' } }),
      json({ actor: { id: 'agent-7', type: 'agent' } }),
      json({ actor: { type: 'agent', id: 'agent-7', extra: 1 } }),
      json({ actor: { type: 'agent', id: '' } }),
      json({ actor: { type: 'agent', id: 'x'.repeat(200) } }),
      json({ actor: { type: 'agent', id: 'x'.repeat(201) } }),
      json({ actor: { type: 'agent', id: 7 } }),
      json({ actor: { type: 'robot', id: 'x' } }),
      json({ actor: null }),
      json({ actor: [] }),
      json({ id: '3b241101-e2bb-4255-8caf-4136c566a962' }),
      json({ id: valid().id.toUpperCase() }),
      json({ id: 7 }),
      json({ type: 'mailer.mail.sent' }),
      json({ type: 'credential.read' }),
      json({ source: 'auth' }),
      json({ source: 'mailer' }),
      json({ tenantId: 'a b' }),
      json({ tenantId: 'x'.repeat(65) }),
      json({ occurredAt: '2026-11-22T10:00:00Z' }),
      json({ occurredAt: '2026-13-45T10:00:00.000Z' }),
      json({ occurredAt: '2026-11-22T10:00:00.000+01:00' }),
      json({ data: 'x' }),
      json({ data: null }),
      json({ data: [1] }),
      json({ data: { nested: { deep: [1, 'two'] } } }),
      `{"__proto__":{"p":1},${json({}).slice(1)}`,
      json({}).replace('"data":{', '"data":{"__proto__":{"q":1},'),
      json({}).replace('"actor":{', '"actor":{"__proto__":{"q":1},'),
      JSON.stringify((({ id, ...rest }) => ({ ...rest, id }))(valid())),
      JSON.stringify((({ data: _data, ...rest }) => rest)(valid())),
      'null',
      '[]',
      '"event"',
      '{}',
    ];
    for (const text of texts) {
      const expected = consumedEventSchema.safeParse(JSON.parse(text));
      const result = validateConsumed(JSON.parse(text));
      expect(result.ok).toBe(expected.success);
      if (result.ok && expected.success) {
        expect(result.event).toStrictEqual(expected.data);
        expect(JSON.stringify(result.event)).toBe(JSON.stringify(expected.data));
      } else if (!result.ok && !expected.success) {
        expect(result.problems).toEqual(expected.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`));
      }
    }
  });

  it('refuses a string holding a lone surrogate (not I-JSON), and takes pairs and escaped backslashes', () => {
    for (const text of [`${'x'.repeat(199)}\ud83d`, '\udc00', 'a\\\udfffb']) {
      const result = validateForPublish({ ...valid(), data: { program: text } });
      expect(result).toEqual({ ok: false, problems: ['(event): a string holds a lone UTF-16 surrogate (cut a string by code points, not code units)'] });
    }
    for (const text of ['😀', '\\ud83d', 'é\u2028']) expect(validateForPublish({ ...valid(), data: { program: text } }).ok).toBe(true);
  });

  it('clips strings for events by code units, never leaving a lone surrogate', () => {
    expect(clip(`${'x'.repeat(199)}😀`, 200)).toBe(`${'x'.repeat(199)}\ufffd`);
    expect(clip('a\ud800b', 200)).toBe('a\ufffdb');
    expect(clip('abc😀', 5)).toBe('abc😀');
    expect(validateForPublish({ ...valid(), data: { program: clip(`${'x'.repeat(199)}😀`, 200) } }).ok).toBe(true);
  });

  it('refuses an oversized event', () => {
    const result = validateForPublish({ ...valid(), data: { blob: 'x'.repeat(MAX_EVENT_BYTES) } });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]).toContain('exceeds');
  });

  it('keeps personal data in its own member with a data subject', () => {
    const event = buildEvent(ctx, {
      type: 'credential.secret.created',
      tenantId: 'acme',
      actor: { type: 'user', id: 'u-1' },
      data: { secretId: 's-1' },
      personal: { subjectId: 'u-1', data: { email: 'a@b.example' } },
    });
    expect(validateForPublish(event).ok).toBe(true);
    expect(validateForPublish({ ...event, personal: { data: {} } }).ok).toBe(false);
  });

  it('puts the emitting service in the subject', () => {
    expect(eventSubject('sandbox-orchestrator.sandbox.started')).toBe(
      'palisade.events.sandbox-orchestrator.sandbox.started',
    );
    expect(serviceOfEventType('sandbox-orchestrator.sandbox.started')).toBe('sandbox-orchestrator');
    expect(serviceOfEventType('nope.x.y')).toBeUndefined();
  });

  it('generates time-ordered ids', () => {
    const a = newEventId();
    const b = newEventId();
    expect(a < b).toBe(true);
  });
});
