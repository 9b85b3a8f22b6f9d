import { buildEvent, clip, consumedEventSchema, newEventId, systemEventContext, validateConsumed, validateForPublish, validateForPublishBySchema, MAX_EVENT_BYTES, TRANSPORT_SEALING_ALG, isSealedPersonal, isTransportSealedPersonal, isSubjectSealedPersonal, type TransportSealedPersonal } from './envelope';
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

  it('takes a plain event by the hand check at publish (no copy, no JSON): it knows every member of the schemas', () => {
    // Fails when envelopeShape, the actor or either personal schema gains a member the hand check does not know.
    const sealed = { subjectId: 'u-1', keyId: '0b7c1e1a-5c2d-4e8f-9a1b-2c3d4e5f6a7b', alg: 'A256GCM', sealed: 'abc_-' };
    const transport: TransportSealedPersonal = { subjectId: 'u-1', alg: TRANSPORT_SEALING_ALG, kid: 'k'.repeat(43), enc: 'e'.repeat(43), nonce: 'n'.repeat(16), ct: 'abc_-' };
    for (const event of [
      valid(),
      { ...valid(), personal: { subjectId: 'u-1', data: { prompt: 'hello' } } },
      { ...valid(), personal: sealed },
      { ...valid(), personal: transport },
      { ...valid(), data: { agentId: undefined, teams: ['t'], n: 1.5, ok: true, none: null } },
    ]) {
      const result = validateForPublish(event);
      expect(result.ok && result.event).toBe(event);
    }
    // as the relay reads it back from jsonb (members by length, then bytes): a copy in the schema's order, `data` kept
    const stored = JSON.parse(JSON.stringify({ ...valid(), personal: sealed }), function (this: unknown, _key: string, value: unknown) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      const entries = Object.entries(value).sort(([a], [b]) => a.length - b.length || (a < b ? -1 : 1));
      return Object.fromEntries(entries);
    });
    expect(Object.keys(stored)).toEqual(['id', 'data', 'type', 'actor', 'source', 'personal', 'tenantId', 'occurredAt']);
    const result = validateForPublish(stored);
    expect(result.ok && result.event.data).toBe(stored.data);
    expect(JSON.stringify(result.ok && result.event)).toBe(JSON.stringify({ ...valid(), id: stored.id, occurredAt: stored.occurredAt, data: stored.data, personal: sealed }));
    expect(JSON.stringify(result)).toBe(JSON.stringify(validateForPublishBySchema(stored)));
  });

  it('accepts and refuses at publish exactly as the schema and the JSON do, with their problems and their event', () => {
    const sealed = { subjectId: 'u-1', keyId: '0b7c1e1a-5c2d-4e8f-9a1b-2c3d4e5f6a7b', alg: 'A256GCM', sealed: 'abc_-' };
    const transport: TransportSealedPersonal = { subjectId: 'u-1', alg: TRANSPORT_SEALING_ALG, kid: 'k'.repeat(43), enc: 'e'.repeat(43), nonce: 'n'.repeat(16), ct: 'abc_-' };
    const withData = (data: unknown) => ({ ...valid(), data });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const protoMember = (target: object) => Object.defineProperty(target, '__proto__', { value: { q: 1 }, enumerable: true, writable: true, configurable: true });
    const inputs: unknown[] = [
      valid(),
      { ...valid(), extra: 1 },
      { ...valid(), personal: { subjectId: 'u-1', data: { email: 'a@b.c' } } },
      { ...valid(), personal: { data: { email: 'a@b.c' }, subjectId: 'u-1' } },
      { ...valid(), personal: { subjectId: '', data: {} } },
      { ...valid(), personal: { subjectId: 'u-1', data: null } },
      { ...valid(), personal: { subjectId: 'u-1', data: { text: 'a\ud800' } } },
      { ...valid(), personal: sealed },
      { ...valid(), personal: { ...sealed, alg: 'none' } },
      { ...valid(), personal: { ...sealed, keyId: sealed.keyId.toUpperCase() } },
      { ...valid(), personal: { ...sealed, sealed: 'ab+/' } },
      { ...valid(), personal: { ...sealed, sealed: '' } },
      { ...valid(), personal: { ...sealed, sealed: 'a'.repeat(MAX_EVENT_BYTES + 1) } },
      { ...valid(), personal: { ...sealed, extra: 1 } },
      { ...valid(), personal: { subjectId: 'u-1', keyId: sealed.keyId, alg: 'A256GCM' } },
      { ...valid(), personal: transport },
      { ...valid(), personal: { ct: transport.ct, nonce: transport.nonce, enc: transport.enc, kid: transport.kid, alg: transport.alg, subjectId: 'u-1' } },
      { ...valid(), personal: { ...transport, alg: 'A256GCM' } },
      { ...valid(), personal: { ...transport, kid: 'k'.repeat(42) } },
      { ...valid(), personal: { ...transport, enc: 'e+'.repeat(21) + 'e' } },
      { ...valid(), personal: { ...transport, nonce: 'n'.repeat(17) } },
      { ...valid(), personal: { ...transport, ct: '' } },
      { ...valid(), personal: { ...transport, ct: 'a'.repeat(MAX_EVENT_BYTES + 1) } },
      { ...valid(), personal: { ...transport, sealed: 'abc' } },
      { ...valid(), personal: { ...transport, subjectId: '' } },
      { ...valid(), personal: (({ nonce: _n, ...rest }) => rest)(transport) },
      { ...valid(), personal: { ...sealed, ct: 'abc' } },
      { ...valid(), personal: undefined },
      { ...valid(), personal: null },
      { ...valid(), actor: { id: 'agent-7', type: 'agent' } },
      { ...valid(), actor: { type: 'agent', id: 'agent-7', extra: 1 } },
      { ...valid(), actor: { type: 'agent', id: '' } },
      { ...valid(), actor: { type: 'agent', id: 'x'.repeat(200) } },
      { ...valid(), actor: { type: 'agent', id: 'x'.repeat(201) } },
      { ...valid(), actor: { type: 'agent', id: 7 } },
      { ...valid(), actor: { type: 'robot', id: 'x' } },
      { ...valid(), actor: null },
      { ...valid(), actor: [] },
      { ...valid(), id: '3b241101-e2bb-4255-8caf-4136c566a962' },
      { ...valid(), id: valid().id.toUpperCase() },
      { ...valid(), id: 7 },
      { ...valid(), type: 'mailer.mail.sent' },
      { ...valid(), type: 'credential.read' },
      { ...valid(), source: 'auth' },
      { ...valid(), source: 'mailer' },
      { ...valid(), tenantId: 'a b' },
      { ...valid(), tenantId: 'x'.repeat(65) },
      { ...valid(), occurredAt: '2026-11-22T10:00:00Z' },
      { ...valid(), occurredAt: '2026-13-45T10:00:00.000Z' },
      { ...valid(), occurredAt: '2026-11-22T10:00:00.000+01:00' },
      withData('x'),
      withData(null),
      withData([1]),
      withData(new Date(0)),
      withData(Object.create(null)),
      withData({ nested: { deep: [1, 'two', null, undefined, { x: [] }] } }),
      withData({ when: new Date(0), n: NaN, big: Infinity, neg: -0 }),
      withData({ f: () => 1, s: Symbol('s') }),
      withData({ m: new Map([[1, 2]]) }),
      withData({ big: new (class { toJSON = undefined; })(), large: new (class Large { toJSON() { return 'x'.repeat(MAX_EVENT_BYTES); } })() }),
      withData({ bare: Object.assign(Object.create(null), { a: 1 }) }),
      withData({ program: `${'x'.repeat(199)}\ud83d` }),
      withData({ program: '\udc00' }),
      withData({ program: 'a\\\udfffb' }),
      withData({ ['key\ud800']: 1 }),
      withData({ program: '😀', escaped: '\\ud83d', line: 'é\u2028\n\t\u0001"' }),
      withData({ blob: 'x'.repeat(MAX_EVENT_BYTES) }),
      withData({ blob: 'x'.repeat(MAX_EVENT_BYTES - 400) }),
      withData({ blob: '\u0001'.repeat(45_000) }),
      withData({ blob: '\u0001'.repeat(40_000) }),
      withData({ blob: 'é'.repeat(MAX_EVENT_BYTES / 2) }),
      withData({ many: Array.from({ length: 20_000 }, (_, i) => i * 1.1e-300) }),
      withData(protoMember({ a: 1 })),
      protoMember({ ...valid() }),
      { ...valid(), actor: protoMember({ type: 'agent', id: 'agent-7' }) },
      (({ id, ...rest }) => ({ ...rest, id }))(valid()),
      (({ data: _data, ...rest }) => rest)(valid()),
      (({ data, ...rest }) => ({ data, ...rest, personal: { sealed: 'abc', alg: 'A256GCM', subjectId: 'u-1', keyId: sealed.keyId } }))(valid()),
      { personal: { data: { prompt: 'hi' }, subjectId: 'u-1' }, ...valid(), actor: { id: 'agent-7', type: 'agent' } },
      { ...valid(), actor: { id: 'agent-7', type: 'agent', extra: 1 } },
      { ...valid(), personal: { alg: 'A256GCM', subjectId: 'u-1', keyId: sealed.keyId } },
      { ...valid(), personal: { data: {}, subjectId: 'u-1', extra: 1 } },
      (({ id, ...rest }) => ({ ...rest, id, extra: 1 }))(valid()),
      null,
      [],
      'event',
      {},
    ];
    const outcome = (validate: (v: unknown) => unknown) => (value: unknown) => {
      try {
        return validate(value);
      } catch (e) {
        return { threw: String(e) };
      }
    };
    let nested: Record<string, unknown> = {};
    const deep = nested;
    for (let i = 0; i < 70; i++) nested = nested.next = {};
    for (const input of [...inputs, withData(cyclic), withData({ n: 1n }), withData(deep)]) {
      const result = outcome(validateForPublish)(input) as Record<string, unknown>;
      const expected = outcome(validateForPublishBySchema)(input) as Record<string, unknown>;
      if ('event' in result && 'event' in expected) {
        expect(result.ok).toBe(true);
        expect(expected.ok).toBe(true);
        expect(JSON.stringify(result.event)).toBe(JSON.stringify(expected.event));
        expect(result.event).toEqual(expected.event);
      } else {
        expect(result).toEqual(expected);
      }
    }
  });

  it('accepts and refuses at consume exactly as the schema does, with its problems and its event', () => {
    const json = (patch: Record<string, unknown>) => JSON.stringify({ ...valid(), ...patch });
    const sealed = { subjectId: 'u-1', keyId: '0b7c1e1a-5c2d-4e8f-9a1b-2c3d4e5f6a7b', alg: 'A256GCM', sealed: 'abc_-' };
    const transport: TransportSealedPersonal = { subjectId: 'u-1', alg: TRANSPORT_SEALING_ALG, kid: 'k'.repeat(43), enc: 'e'.repeat(43), nonce: 'n'.repeat(16), ct: 'abc_-' };
    const texts = [
      json({}),
      json({ extra: 1, more: { a: 1 } }),
      json({ personal: { subjectId: 'u-1', data: { email: 'a@b.c' } } }),
      json({ personal: sealed }),
      json({ personal: { ...sealed, alg: 'none' } }),
      json({ personal: transport }),
      json({ personal: { ...transport, kid: 'short' } }),
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

describe('sealed personal members', () => {
  const sealed = { subjectId: 'u-1', keyId: '0b7c1e1a-5c2d-4e8f-9a1b-2c3d4e5f6a7b', alg: 'A256GCM' as const, sealed: 'abc_-' };
  const transport: TransportSealedPersonal = { subjectId: 'u-1', alg: TRANSPORT_SEALING_ALG, kid: 'k'.repeat(43), enc: 'e'.repeat(43), nonce: 'n'.repeat(16), ct: 'abc_-' };

  it('tells the transport-sealed form (producer to audit) from the subject-sealed one (the audit topic) and from plaintext', () => {
    expect([isSealedPersonal(sealed), isSubjectSealedPersonal(sealed), isTransportSealedPersonal(sealed)]).toEqual([true, true, false]);
    expect([isSealedPersonal(transport), isSubjectSealedPersonal(transport), isTransportSealedPersonal(transport)]).toEqual([true, false, true]);
    const plain = { subjectId: 'u-1', data: { prompt: 'hi' } };
    expect([isSealedPersonal(plain), isSubjectSealedPersonal(plain), isTransportSealedPersonal(plain)]).toEqual([false, false, false]);
    expect(isSealedPersonal(undefined)).toBe(false);
  });
});
