import type { NatsConnection } from 'nats';
import { buildEvent, isTransportSealedPersonal, PalisadeError, systemEventContext, transportSealedPersonalSchema, type EventEnvelope, type Personal, type PersonalSealer, type TransportSealedPersonal } from '@palisade/contracts';
import { TransportPersonalSealer } from './transport-personal-sealer';
import { generateTransportKeyPair, openTransportSealed, transportEpochKey, transportKeyId, TransportSealingEpoch } from './transport-sealing';

const rpcRequest = jest.fn(); // jest.mock is hoisted above the imports
jest.mock('./rpc', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const event = (personal?: Personal): EventEnvelope =>
  buildEvent(systemEventContext('llm-router'), { type: 'llm-router.model-call.recorded', tenantId: 'acme', actor: { type: 'agent', id: 'a-1' }, data: { requestId: 'r-1' }, ...(personal ? { personal } : {}) });
const prompt = (text = 'my card is 4111 1111 1111 1111'): Personal => ({ subjectId: 'u-1', data: { prompt: text } });

type Pair = Awaited<ReturnType<typeof generateTransportKeyPair>>;
const replyFor = (pair: Pair, at: number, notAfter = at + 3_600_000) => ({
  keys: [{ kid: transportKeyId(pair.publicKey), kty: 'OKP', crv: 'X25519', x: pair.publicKey.toString('base64url'), alg: 'HPKE-X25519-SHA256-EXPORT-A256GCM', createdAt: new Date(at).toISOString(), notAfter: new Date(notAfter).toISOString() }],
});
/** What the audit service does at ingest: decapsulate, export, open for the event. */
const openAsAudit = async (pair: Pair, e: EventEnvelope, member: TransportSealedPersonal) => openTransportSealed(await transportEpochKey(pair.privateKey, member.enc), e, member);

class FallbackSealer implements PersonalSealer {
  calls = 0;
  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    this.calls++;
    return events.map((e) => (e.personal ? { ...e, personal: { subjectId: e.personal.subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVk' } } : e));
  }
}

describe('transport sealing (HPKE export + AES-256-GCM)', () => {
  let audit: Pair;
  beforeAll(async () => {
    audit = await generateTransportKeyPair();
  });

  it('seals for the audit key, and opens there for the same event: round trip, the plaintext nowhere in the member', async () => {
    const epoch = await TransportSealingEpoch.start(transportKeyId(audit.publicKey), audit.publicKey, Date.now());
    const e = event(prompt());
    const member = epoch.seal(e, e.personal as Personal);
    expect(transportSealedPersonalSchema.parse(member)).toEqual(member);
    expect(JSON.stringify(member)).not.toContain('4111');
    expect(await openAsAudit(audit, e, member)).toEqual({ prompt: 'my card is 4111 1111 1111 1111' });
    // the same event as audit receives it (a copy, other members changed): opens too
    expect(await openAsAudit(audit, { ...e, data: { requestId: 'r-2' } }, member)).toEqual({ prompt: 'my card is 4111 1111 1111 1111' });
    // the epoch's key is in nothing serialized
    expect(Object.keys(JSON.parse(JSON.stringify(epoch)))).toEqual(['kid', 'enc', 'startedAt', 'sealed']);
  });

  it('does not open in another event, under another tenant, source or type with the same event id, for another subject, altered, under another encapsulation or with another key', async () => {
    const epoch = await TransportSealingEpoch.start(transportKeyId(audit.publicKey), audit.publicKey, Date.now());
    const e = event(prompt());
    const member = epoch.seal(e, e.personal as Personal);
    await expect(openAsAudit(audit, event(), member)).rejects.toThrow('does not open');
    await expect(openAsAudit(audit, { ...e, tenantId: 'globex' }, member)).rejects.toThrow('does not open');
    await expect(openAsAudit(audit, { ...e, source: 'auth' }, member)).rejects.toThrow('does not open');
    await expect(openAsAudit(audit, { ...e, type: 'llm-router.model-call.failed' }, member)).rejects.toThrow('does not open');
    await expect(openAsAudit(audit, e, { ...member, subjectId: 'u-2' })).rejects.toThrow('does not open');
    const ct = Buffer.from(member.ct, 'base64url');
    ct[3] ^= 1;
    await expect(openAsAudit(audit, e, { ...member, ct: ct.toString('base64url') })).rejects.toThrow('does not open');
    const other = await TransportSealingEpoch.start(transportKeyId(audit.publicKey), audit.publicKey, Date.now());
    await expect(openAsAudit(audit, e, { ...member, enc: other.enc })).rejects.toThrow('does not open');
    await expect(openAsAudit(await generateTransportKeyPair(), e, member)).rejects.toThrow('does not open');
  });
});

describe('TransportPersonalSealer', () => {
  let audit: Pair;
  let now: number;
  let fallback: FallbackSealer;
  const sealer = (options: Partial<ConstructorParameters<typeof TransportPersonalSealer>[0]> = {}) =>
    new TransportPersonalSealer({ nats: () => nc, timeoutMs: 500, fallback, now: () => now, ...options });

  beforeAll(async () => {
    audit = await generateTransportKeyPair();
  });
  beforeEach(() => {
    rpcRequest.mockReset();
    now = Date.parse('2026-12-05T12:00:00.000Z');
    fallback = new FallbackSealer();
  });

  it('seals every plaintext member locally after one key request; events without personal data or sealed already are left as they are', async () => {
    rpcRequest.mockResolvedValue(replyFor(audit, now));
    const s = sealer();
    const a = event(prompt('first'));
    const plain = event();
    const out1 = await s.seal([a, plain]);
    const b = event(prompt('second'));
    const out2 = await s.seal([b, out1[0]]);
    expect(rpcRequest).toHaveBeenCalledTimes(1);
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.audit.transport-keys', {}, { timeoutMs: 500 });
    expect(out1[1]).toBe(plain);
    expect(out2[1]).toBe(out1[0]);
    expect(isTransportSealedPersonal(out1[0].personal)).toBe(true);
    expect(await openAsAudit(audit, b, out2[0].personal as TransportSealedPersonal)).toEqual({ prompt: 'second' });
    expect(JSON.stringify([out1, out2])).not.toMatch(/first|second/);
    expect(fallback.calls).toBe(0);
    // one epoch: the same encapsulation
    expect((out1[0].personal as TransportSealedPersonal).enc).toBe((out2[0].personal as TransportSealedPersonal).enc);
  });

  it('asks nothing for appends without plaintext personal data', async () => {
    expect(await sealer().seal([event()])).toHaveLength(1);
    expect(rpcRequest).not.toHaveBeenCalled();
  });

  it('starts a new epoch (a new encapsulation) after epochMs, after epochMaxMembers, and for a new audit key', async () => {
    rpcRequest.mockResolvedValue(replyFor(audit, now));
    const s = sealer({ epochMs: 60_000, epochMaxMembers: 3 });
    const encOf = async () => ((await s.seal([event(prompt())]))[0].personal as TransportSealedPersonal).enc;
    const first = await encOf();
    expect(await encOf()).toBe(first);
    expect(await encOf()).toBe(first);
    const second = await encOf(); // the 4th member: over epochMaxMembers
    expect(second).not.toBe(first);
    now += 60_000;
    const third = await encOf();
    expect(third).not.toBe(second);
    // the key is asked again after refreshMs (5 minutes, in the background); the new key gets a new epoch
    const rotated = await generateTransportKeyPair();
    rpcRequest.mockResolvedValue(replyFor(rotated, now));
    now += 5 * 60_000;
    await encOf(); // still the held key while the refresh runs
    await new Promise((r) => setImmediate(r));
    const e = event(prompt('after rotation'));
    const [sealed] = await s.seal([e]);
    const member = sealed.personal as TransportSealedPersonal;
    expect(member.kid).toBe(transportKeyId(rotated.publicKey));
    expect(await openAsAudit(rotated, e, member)).toEqual({ prompt: 'after rotation' });
    expect(rpcRequest).toHaveBeenCalledTimes(2);
  });

  it('falls back to the audit RPC while no key can be had, asking again only after retryMs', async () => {
    rpcRequest.mockRejectedValue(new PalisadeError('unavailable', 'no responders'));
    const s = sealer({ retryMs: 10_000 });
    const out = await s.seal([event(prompt())]);
    expect(fallback.calls).toBe(1);
    expect(out[0].personal).toMatchObject({ alg: 'A256GCM' });
    await s.seal([event(prompt())]);
    expect(rpcRequest).toHaveBeenCalledTimes(1);
    expect(fallback.calls).toBe(2);
    now += 10_000;
    rpcRequest.mockResolvedValue(replyFor(audit, now));
    const [local] = await s.seal([event(prompt())]);
    expect(isTransportSealedPersonal(local.personal)).toBe(true);
    expect(fallback.calls).toBe(2);
  });

  it('fails closed as its fallback does when neither can seal (no connection)', async () => {
    const down: PersonalSealer = { seal: () => Promise.reject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable')) };
    await expect(new TransportPersonalSealer({ nats: () => undefined, timeoutMs: 100, fallback: down }).seal([event(prompt())])).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('does not trust a reply that is malformed, whose key id is not its key, or whose keys are all past notAfter', async () => {
    const good = replyFor(audit, now);
    const other = await generateTransportKeyPair();
    for (const reply of [
      { keys: [{ ...good.keys[0], extra: 1 }] },
      { keys: [{ ...good.keys[0], x: other.publicKey.toString('base64url') }] },
      { keys: [{ ...good.keys[0], x: 'AAAA' }] },
      replyFor(audit, now - 7_200_000, now - 1),
      { keys: [] },
      'garbage',
    ]) {
      rpcRequest.mockReset().mockResolvedValue(reply);
      fallback = new FallbackSealer();
      await sealer().seal([event(prompt())]);
      expect(fallback.calls).toBe(1);
    }
  });

  it('stops using a held key at its notAfter (asks again on the path, then falls back if that fails)', async () => {
    rpcRequest.mockResolvedValue(replyFor(audit, now, now + 60_000));
    const s = sealer();
    await s.seal([event(prompt())]);
    now += 60_000;
    rpcRequest.mockRejectedValue(new Error('timeout'));
    await s.seal([event(prompt())]);
    expect(rpcRequest).toHaveBeenCalledTimes(2);
    expect(fallback.calls).toBe(1);
  });
});
