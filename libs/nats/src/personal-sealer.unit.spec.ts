import type { NatsConnection } from 'nats';
import { buildEvent, PalisadeError, systemEventContext, type EventEnvelope, type Personal } from '@palisade/contracts';
import { NatsPersonalSealer } from './personal-sealer';

const rpcRequest = jest.fn(); // jest.mock is hoisted above the imports
jest.mock('./rpc', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const sealer = new NatsPersonalSealer({ nats: () => nc, timeoutMs: 1500 });
const UNAVAILABLE = { code: 'unavailable', message: 'personal data cannot be sealed: the audit service is unavailable' };

const event = (personal?: Personal): EventEnvelope =>
  buildEvent(systemEventContext('auth'), { type: 'auth.user.sign-in-failed', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { userId: 'u-1', reason: 'bad_credentials' }, ...(personal ? { personal } : {}) });
const sealedFor = (subjectId: string, n = 1) => ({ subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM', sealed: `c2VhbGVk${n}` });

describe('NatsPersonalSealer (audit seal-personal)', () => {
  beforeEach(() => rpcRequest.mockReset());

  it('asks once for the events with plaintext personal data, in order, and puts each sealed member back on its event', async () => {
    const a = event({ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } });
    const plain = event();
    const b = event({ subjectId: 'u-2', data: { username: 'bob' } });
    rpcRequest.mockResolvedValue({ sealed: [sealedFor('u-1', 1), sealedFor('u-2', 2)] });

    const out = await sealer.seal([a, plain, b]);

    expect(rpcRequest).toHaveBeenCalledTimes(1);
    expect(rpcRequest).toHaveBeenCalledWith(
      nc,
      'palisade.rpc.audit.seal-personal',
      {
        events: [
          { id: a.id, type: a.type, tenantId: 'acme', data: a.data, personal: a.personal },
          { id: b.id, type: b.type, tenantId: 'acme', data: b.data, personal: b.personal },
        ],
      },
      { timeoutMs: 1500 },
    );
    expect(out).toEqual([{ ...a, personal: sealedFor('u-1', 1) }, plain, { ...b, personal: sealedFor('u-2', 2) }]);
    expect(JSON.stringify(out)).not.toContain('203.0.113.7');
  });

  it('asks nothing when no event has plaintext personal data (services without personal data pay nothing)', async () => {
    const already = { ...event(), personal: sealedFor('u-1') } as EventEnvelope;
    const events = [event(), already];
    await expect(sealer.seal(events)).resolves.toEqual(events);
    expect(rpcRequest).not.toHaveBeenCalled();
  });

  it('splits more than 500 events into requests of at most 500', async () => {
    const events = Array.from({ length: 501 }, (_, i) => event({ subjectId: `u-${i}`, data: { n: i } }));
    rpcRequest.mockImplementation((_nc, _subject, body: { events: Array<{ personal: Personal }> }) => Promise.resolve({ sealed: body.events.map((e) => sealedFor(e.personal.subjectId)) }));
    const out = await sealer.seal(events);
    expect(rpcRequest.mock.calls.map((c) => (c[2] as { events: unknown[] }).events.length)).toEqual([500, 1]);
    expect(out[500].personal).toEqual(sealedFor('u-500'));
  });

  it('fails closed with a 503: no connection, no answer, an error, or an answer that is not one sealed member per event for the same subject', async () => {
    const one = [event({ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } })];
    await expect(new NatsPersonalSealer({ nats: () => undefined, timeoutMs: 100 }).seal(one)).rejects.toMatchObject(UNAVAILABLE);
    rpcRequest.mockRejectedValueOnce(new PalisadeError('unavailable', 'no responders for palisade.rpc.audit.seal-personal'));
    await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);
    rpcRequest.mockRejectedValueOnce(new PalisadeError('forbidden', 'auth may not seal llm-router events'));
    await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);
    for (const reply of [
      { sealed: [] },
      { sealed: [sealedFor('u-1'), sealedFor('u-1')] },
      { sealed: [sealedFor('u-2')] },
      { sealed: [{ ...sealedFor('u-1'), alg: 'none' }] },
      { sealed: [{ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } }] },
      null,
    ]) {
      rpcRequest.mockResolvedValueOnce(reply);
      await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);
    }
  });
});
