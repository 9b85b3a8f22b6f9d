import type { NatsConnection } from 'nats';
import { buildEvent, SEAL_PERSONAL_SUBJECT, sealPersonalRequestSchema, systemEventContext, type EventEnvelope, type Personal, type SealPersonalRequest } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { NatsPersonalSealer, serveRpc, type RpcServer } from '../src';
import { connectAs, runToken, serviceIdentity } from './helpers';

// NatsPersonalSealer, the producer's side of SEAL_PERSONAL_SUBJECT, over the TLS NATS of
// deploy/local: auth's certificate asks, a stand-in with audit's certificate answers with
// sealed blobs (audit's own handler is tested in services/audit; audit may publish only to
// the inboxes of the callers nats-requests.txt lets ask it). Requests travel in a namespace
// of this run, so no running audit service answers them.
const event = (personal?: Personal): EventEnvelope =>
  buildEvent(systemEventContext('auth'), { type: 'auth.user.sign-in-failed', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { userId: 'u-1' }, ...(personal ? { personal } : {}) });
const sealedFor = (e: SealPersonalRequest['events'][number]) => ({ subjectId: e.personal.subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: Buffer.from(`sealed:${e.id}`).toString('base64url') });
const UNAVAILABLE = { code: 'unavailable', message: 'personal data cannot be sealed: the audit service is unavailable' };

describe('NatsPersonalSealer over NATS request-reply', () => {
  const namespaceBefore = process.env.PALISADE_RPC_NAMESPACE;
  const identities: ServiceIdentity[] = [];
  let audit: NatsConnection;
  let auth: NatsConnection;
  let server: RpcServer;
  const requests: SealPersonalRequest[] = [];
  /** What the stand-in answers: sealed members, or (for the refusals) a reply of its choosing. */
  let answer: (request: SealPersonalRequest) => unknown = (r) => ({ sealed: r.events.map(sealedFor) });

  beforeAll(async () => {
    process.env.PALISADE_RPC_NAMESPACE = runToken('sealer');
    identities.push(await serviceIdentity('audit'), await serviceIdentity('auth'));
    audit = await connectAs(identities[0], 'int-audit-seal-stand-in');
    auth = await connectAs(identities[1], 'int-auth-sealer');
    server = serveRpc(audit, {
      service: 'audit',
      handlers: {
        [SEAL_PERSONAL_SUBJECT]: (payload) => {
          const request = sealPersonalRequestSchema.parse(payload);
          requests.push(request);
          return answer(request);
        },
      },
    });
    await audit.flush();
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all([audit?.close(), auth?.close()]);
    identities.forEach((i) => i.stop());
    if (namespaceBefore === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
    else process.env.PALISADE_RPC_NAMESPACE = namespaceBefore;
  });

  beforeEach(() => {
    requests.length = 0;
    answer = (r) => ({ sealed: r.events.map(sealedFor) });
  });

  it('has the events with personal data sealed in one request, in order; the others untouched; no plaintext left', async () => {
    const sealer = new NatsPersonalSealer({ nats: () => auth, timeoutMs: 3000 });
    const a = event({ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } });
    const plain = event();
    const b = event({ subjectId: 'unknown-4f2a', data: { username: 'mallory', sourceAddress: '198.51.100.9' } });

    const out = await sealer.seal([a, plain, b]);

    expect(requests).toHaveLength(1);
    expect(requests[0].events.map((e) => e.id)).toEqual([a.id, b.id]);
    expect(requests[0].events[1]).toEqual({ id: b.id, type: b.type, tenantId: 'acme', data: b.data, personal: b.personal });
    expect(out.map((e) => e.personal)).toEqual([sealedFor(requests[0].events[0]), undefined, sealedFor(requests[0].events[1])]);
    expect(JSON.stringify(out)).not.toMatch(/203\.0\.113\.7|mallory|198\.51\.100\.9/);
  });

  it('fails closed within its timeout when audit does not answer, answers an error or answers for another subject', async () => {
    const sealer = new NatsPersonalSealer({ nats: () => auth, timeoutMs: 500 });
    const one = [event({ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } })];

    answer = () => new Promise(() => undefined);
    const started = Date.now();
    await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(3000);

    answer = () => {
      throw new Error('key store down');
    };
    await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);

    answer = (r) => ({ sealed: r.events.map((e) => ({ ...sealedFor(e), subjectId: 'someone-else' })) });
    await expect(sealer.seal(one)).rejects.toMatchObject(UNAVAILABLE);
  });

  it('fails closed at once when nobody serves seal-personal (audit down)', async () => {
    const before = process.env.PALISADE_RPC_NAMESPACE;
    process.env.PALISADE_RPC_NAMESPACE = runToken('nobody');
    try {
      const sealer = new NatsPersonalSealer({ nats: () => auth, timeoutMs: 3000 });
      await expect(sealer.seal([event({ subjectId: 'u-1', data: { sourceAddress: '203.0.113.7' } })])).rejects.toMatchObject(UNAVAILABLE);
      expect(requests).toEqual([]);
    } finally {
      process.env.PALISADE_RPC_NAMESPACE = before;
    }
  });
});
