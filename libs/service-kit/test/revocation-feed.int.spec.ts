import { randomUUID } from 'node:crypto';
import { RevocationList } from '@palisade/auth-verifier';
import { buildEvent, EVENTS_STREAM, systemEventContext } from '@palisade/contracts';
import { connectNats, JetStreamEventPublisher, type NatsConnection } from '@palisade/nats';
import { createLogger } from '@palisade/observability';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { REVOCATION_EVENT_TYPE, RevocationFeed } from '../src/revocation-feed';

// Real TLS NATS with the permissions of deploy/local/nats.sh: the policy service follows
// what the auth service revokes, through its own ephemeral consumer.
const pki = () => infra('PALISADE_PKI_DIR');
const identities: ServiceIdentity[] = [];
const connections: NatsConnection[] = [];
const logger = createLogger({ service: 'policy', level: 'silent' });

async function connectAs(name: 'auth' | 'policy'): Promise<NatsConnection> {
  const identity = await ServiceIdentity.fromDevCa({ caDir: pki(), name });
  identities.push(identity);
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: `feed-int-${name}` });
  connections.push(nc);
  return nc;
}

const revocation = (data: Record<string, unknown>, tenantId = 'acme') =>
  buildEvent(systemEventContext('auth'), { type: REVOCATION_EVENT_TYPE, tenantId, actor: { type: 'user', id: 'admin' }, data: { ...data, cause: 'test' } });

afterAll(async () => {
  for (const nc of connections) await nc.drain().catch(() => undefined);
  for (const identity of identities) identity.stop();
});

describe('RevocationFeed', () => {
  it('applies revocations published by auth within a second, and replays recent ones at start', async () => {
    const auth = await connectAs('auth');
    const policy = await connectAs('policy');
    const publisher = new JetStreamEventPublisher(auth);
    const earlier = randomUUID();
    await publisher.publish([revocation({ target: 'session', sessionId: earlier, at: Math.floor(Date.now() / 1000) })]);

    const list = new RevocationList();
    const feed = new RevocationFeed({ nc: policy, service: 'policy', revocations: list, logger, heartbeatMs: 500 });
    await feed.start();
    try {
      // A subject of this run only: the replay also brings earlier runs' revocations (a run an hour ago revoked its own).
      const subject = `u-${randomUUID()}`;
      const claims = (sid: string) => ({ jti: randomUUID(), sid, tid: 'acme', sub: subject, iat: Math.floor(Date.now() / 1000) - 5 });
      await eventually(() => list.reasonRevoked(claims(earlier)) === 'session revoked', 5000);

      const live = randomUUID();
      expect(list.reasonRevoked(claims(live))).toBeUndefined();
      const started = Date.now();
      await publisher.publish([revocation({ target: 'session', sessionId: live, at: Math.floor(Date.now() / 1000) })]);
      await eventually(() => list.reasonRevoked(claims(live)) === 'session revoked', 1000, 5);
      const latencyMs = Date.now() - started;
      console.log(`revocation feed latency (publish → applied): ${latencyMs} ms`);
      expect(latencyMs).toBeLessThan(1000);

      await publisher.publish([revocation({ target: 'subject', subject, at: Math.floor(Date.now() / 1000) }), revocation({ target: 'key', kid: 'k-x' })]);
      await eventually(() => list.reasonRevoked({ ...claims(randomUUID()), sid: undefined }) === 'principal revoked', 2000);
      await eventually(() => list.reasonRevoked({ jti: 'j', tid: 'other', sub: 'x', iat: 0 }, 'k-x') === 'signing key revoked', 2000);
    } finally {
      await feed.stop();
    }
  });

  it('ignores revocation-shaped events from another service and malformed ones', async () => {
    const policy = await connectAs('policy');
    const list = new RevocationList();
    // No replay: the hour's revocations of other runs in the stream would be counted while they arrive.
    const feed = new RevocationFeed({ nc: policy, service: 'policy', revocations: list, logger, replaySec: 0 });
    await feed.start();
    try {
      const publisher = new JetStreamEventPublisher(connections[0]);
      const before = feed.applied;
      await publisher.publish([revocation({ target: 'bogus' }), revocation({ target: 'session' })]);
      // A valid revocation after them: once it is applied, the two before it have been received.
      const marker = randomUUID();
      await publisher.publish([revocation({ target: 'session', sessionId: marker, at: Math.floor(Date.now() / 1000) })]);
      const claims = { jti: randomUUID(), sid: marker, tid: 'acme', sub: 'u-9', iat: Math.floor(Date.now() / 1000) - 5 };
      await eventually(() => list.reasonRevoked(claims) === 'session revoked', 5000);
      expect(feed.applied - before).toBe(1);
    } finally {
      await feed.stop();
    }
  });

  it('does not let a service create a consumer of any other subject', async () => {
    const policy = await connectAs('policy');
    const jsm = await policy.jetstreamManager({ checkAPI: false });
    await expect(
      jsm.consumers.add(EVENTS_STREAM, {
        name: `policy-snoop-${randomUUID().slice(0, 8)}`,
        filter_subject: 'palisade.events.credential.secret.created',
        deliver_subject: '_INBOX.policy.snoop',
      } as never),
    ).rejects.toThrow();
    // The allowed subject with a different filter in the request body is refused by the server.
    await expect(
      policy.request(
        `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.policy-snoop2.palisade.events.auth.revocation.issued`,
        new TextEncoder().encode(JSON.stringify({ stream_name: EVENTS_STREAM, config: { name: 'policy-snoop2', filter_subject: 'palisade.events.>', deliver_subject: '_INBOX.policy.snoop2', ack_policy: 'none' } })),
        { timeout: 3000 },
      ).then((m) => JSON.parse(new TextDecoder().decode(m.data))),
    ).resolves.toMatchObject({ error: expect.objectContaining({ code: 400 }) });
  });
});
