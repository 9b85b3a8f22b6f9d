import { buildEvent, clip, newEventId, systemEventContext, validateConsumed, validateForPublish, MAX_EVENT_BYTES } from './envelope';
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
