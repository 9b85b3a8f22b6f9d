import { newEventId, PalisadeError, sealPersonalRequestSchema, type SealPersonalRequest } from '@palisade/contracts';
import { ownEventsOf } from './seal-personal.rpc';

const event = (type: string) => ({ id: newEventId(), type, tenantId: 't1', data: {}, personal: { subjectId: 'u1', data: { sourceAddress: '192.0.2.1' } } });
const request = (...types: string[]): SealPersonalRequest => sealPersonalRequestSchema.parse({ events: types.map(event) });

function refusal(run: () => unknown): PalisadeError {
  try {
    run();
  } catch (error) {
    return error as PalisadeError;
  }
  throw new Error('not refused');
}

describe('who may have events sealed (SEAL_PERSONAL_SUBJECT)', () => {
  it('a service has its own events sealed', () => {
    const r = request('auth.user.signed-in', 'auth.user.sign-in-failed');
    expect(ownEventsOf('auth', r)).toBe(r.events);
  });

  it("refuses a batch holding another service's event, naming it; and a request without a calling service", () => {
    const foreign = refusal(() => ownEventsOf('auth', request('auth.user.signed-in', 'llm-router.model.called')));
    expect(foreign).toBeInstanceOf(PalisadeError);
    expect(foreign.code).toBe('forbidden');
    expect(foreign.message).toContain('events[1] (llm-router.model.called)');
    expect(foreign.message).not.toContain('events[0]');
    const anonymous = refusal(() => ownEventsOf(undefined, request('auth.user.signed-in')));
    expect(anonymous.code).toBe('forbidden');
  });
});
