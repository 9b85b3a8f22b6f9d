import { systemEventContext, validateForPublish } from './envelope';
import { eventForgeryDetected } from './security-events';
import { eventOriginProblems, publisherOfEventSubject, serviceOfReplySubject } from './subjects';

describe('publisherOfEventSubject', () => {
  it.each([
    ['palisade.events.llm-router.completion.finished', 'llm-router'],
    ['palisade.events.auth.user.signed-in', 'auth'],
    ['palisade.events.mailer.mail.sent', undefined],
    ['palisade.rpc.auth.verify-api-key', undefined],
    ['palisade.eventsauth.user.signed-in', undefined],
    ['palisade.events.', undefined],
  ])('%s is published by %s', (subject, service) => {
    expect(publisherOfEventSubject(subject)).toBe(service);
  });
});

describe('serviceOfReplySubject', () => {
  it.each([
    ['_INBOX.credential.abc.1', 'credential'],
    ['_INBOX.sandbox-orchestrator.x', 'sandbox-orchestrator'],
    ['_INBOX.abc123', undefined],
    ['_INBOX.mailer.x', undefined],
    ['palisade.rpc.credential.lease', undefined],
    [undefined, undefined],
  ])('%s is the inbox of %s', (reply, service) => {
    expect(serviceOfReplySubject(reply)).toBe(service);
  });
});

describe('eventOriginProblems', () => {
  it('accepts an event whose source and type name the publishing service', () => {
    expect(eventOriginProblems('palisade.events.auth.user.signed-in', { source: 'auth', type: 'auth.user.signed-in' })).toEqual([]);
  });

  it('refuses auth history written by llm-router (issue 10, finding 2)', () => {
    expect(eventOriginProblems('palisade.events.llm-router.completion.finished', { source: 'auth', type: 'auth.user.signed-in' })).toEqual([
      'source: "auth" published by llm-router',
      'type: "auth.user.signed-in" published by llm-router',
    ]);
  });

  it('refuses a source or a type that alone names another service', () => {
    expect(eventOriginProblems('palisade.events.billing.x.y', { source: 'billing', type: 'audit.x.y' })).toEqual(['type: "audit.x.y" published by billing']);
    expect(eventOriginProblems('palisade.events.billing.x.y', { source: 'audit', type: 'billing.x.y' })).toEqual(['source: "audit" published by billing']);
  });

  it('refuses an event on a subject that names no service', () => {
    expect(eventOriginProblems('palisade.events.mailer.x.y', { source: 'auth', type: 'auth.x.y' })).toEqual(['subject: "palisade.events.mailer.x.y" names no service']);
  });
});

describe('eventForgeryDetected', () => {
  it('is a valid system event of the reporting service that carries none of the forged actor or personal data', () => {
    const event = eventForgeryDetected(systemEventContext('audit'), {
      subject: 'palisade.events.llm-router.x.y',
      publisher: 'llm-router',
      claimedSource: 'auth',
      claimedType: 'auth.user.signed-in',
      eventId: '0190a0b0-0000-7000-8000-000000000000',
      tenantId: 'demo',
      consumer: 'audit-ingest',
      streamSequence: 42,
      problems: ['source: "auth" published by llm-router'],
    });
    expect(validateForPublish(event)).toEqual({ ok: true, event });
    expect(event).toMatchObject({ type: 'audit.security.event-forgery-detected', source: 'audit', tenantId: 'system', actor: { type: 'service', id: 'audit' } });
    expect(event.data).toMatchObject({ publisher: 'llm-router', claimedSource: 'auth', tenantId: 'demo', streamSequence: 42 });
  });
});
