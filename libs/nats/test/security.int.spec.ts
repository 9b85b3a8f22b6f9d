import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, type NatsConnection } from 'nats';
import { EVENTS_STREAM, DEAD_LETTER_STREAM, PalisadeError } from '@palisade/contracts';
import { ensureCa, issueCertificate, type ServiceIdentity } from '@palisade/pki';
import { JetStreamEventPublisher, rpcRequest } from '../src';
import { adminIdentity, connectAs, connectOnce, deleteDurable, NATS_URL, PKI_DIR, runToken, serviceIdentity, sleep, testEvent } from './helpers';

const url = new URL(NATS_URL.replace(/^tls:/, 'http:'));
const caPem = () => readFileSync(join(PKI_DIR, 'ca.crt'), 'utf8');

let admin: NatsConnection;
let policy: NatsConnection;
let credential: NatsConnection;
let llmRouter: NatsConnection;
const identities: ServiceIdentity[] = [];

beforeAll(async () => {
  const a = await adminIdentity();
  const p = await serviceIdentity('policy');
  const c = await serviceIdentity('credential');
  const l = await serviceIdentity('llm-router');
  identities.push(a, p, c, l);
  admin = await connectAs(a, 'int-admin');
  policy = await connectAs(p, 'int-policy');
  credential = await connectAs(c, 'int-credential');
  llmRouter = await connectAs(l, 'int-llm-router');
});

afterAll(async () => {
  await Promise.all([admin?.close(), policy?.close(), credential?.close(), llmRouter?.close()]);
  identities.forEach((i) => i.stop());
});

/** Resolves with the first message on `subject` seen by the admin, or undefined after `ms`. */
function firstMessage(subject: string, ms: number): Promise<string | undefined> {
  const sub = admin.subscribe(subject, { max: 1 });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve(undefined);
    }, ms);
    void (async () => {
      for await (const m of sub) {
        clearTimeout(timer);
        resolve(m.subject);
      }
    })();
  });
}

/** The next permission violation the server reports to `nc`, as "<operation> <subject>". */
async function nextViolation(nc: NatsConnection, ms = 3000): Promise<string | undefined> {
  const status = nc.status() as ReturnType<NatsConnection['status']> & { stop(): void };
  const timer = setTimeout(() => status.stop(), ms);
  for await (const s of status) {
    const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
    if (s.type === 'error' && s.data === 'PERMISSIONS_VIOLATION' && ctx) {
      clearTimeout(timer);
      status.stop();
      return `${ctx.operation} ${ctx.subject}`;
    }
  }
  return undefined;
}

describe('NATS transport security', () => {
  it('refuses a plaintext client: it gets no PONG, only a closed connection', async () => {
    const result = await new Promise<{ info: string; received: string }>((resolve, reject) => {
      const socket = netConnect(Number(url.port), url.hostname);
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (received.startsWith('INFO') && received.includes('\r\n') && !socket.writableEnded) {
          socket.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\nPING\r\n');
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ info: received.split('\r\n')[0], received: received.split('\r\n').slice(1).join('\n') }));
      setTimeout(() => reject(new Error('server kept the plaintext connection open')), 5000).unref();
    });
    expect(result.info).toContain('"tls_required":true');
    expect(result.received).not.toContain('PONG');
  });

  it('refuses a TLS client without a certificate', async () => {
    await expect(connectOnce({ ca: caPem() })).rejects.toThrow();
  });

  it('refuses a client whose certificate comes from another CA, even naming a real service', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-foreign-ca-'));
    try {
      const { ca: foreign } = await ensureCa(dir);
      const impostor = await issueCertificate(foreign, { kind: 'service', name: 'policy' });
      await expect(connectOnce({ cert: impostor.certPem, key: impostor.keyPem, ca: caPem() })).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses TLS 1.2', async () => {
    const p = await serviceIdentity('policy');
    try {
      const { cert, key, ca } = p.tlsOptions();
      await expect(connectOnce({ cert, key, ca, maxVersion: 'TLSv1.2' })).rejects.toThrow();
      const ok = await connectOnce({ cert, key, ca });
      await ok.close();
    } finally {
      p.stop();
    }
  });
});

describe('per-service permissions', () => {
  it('lets policy publish its own events but not credential events', async () => {
    const token = runToken();
    const own = `palisade.events.policy.${token}.created`;
    const foreign = `palisade.events.credential.${token}.created`;

    const seenOwn = firstMessage(own, 2000);
    const seenForeign = firstMessage(foreign, 1000);
    await admin.flush();
    const violation = nextViolation(policy);
    policy.publish(foreign, JSON.stringify(testEvent('credential', `credential.${token}.created`)));
    policy.publish(own, JSON.stringify(testEvent('policy', `policy.${token}.created`)));
    await policy.flush();

    expect(await violation).toBe(`publish ${foreign}`);
    expect(await seenForeign).toBeUndefined();
    expect(await seenOwn).toBe(own);
  });

  it('does not let policy answer (subscribe to) credential requests', async () => {
    const violation = nextViolation(policy);
    const sub = policy.subscribe('palisade.rpc.credential.>');
    const received: string[] = [];
    void (async () => {
      for await (const m of sub) received.push(m.subject);
    })().catch(() => undefined);
    await policy.flush();
    expect(await violation).toBe('subscription palisade.rpc.credential.>');
    admin.publish('palisade.rpc.credential.lease', 'x');
    await admin.flush();
    await sleep(200);
    expect(received).toEqual([]);
  });

  it('does not let policy read replies meant for another service', async () => {
    const violation = nextViolation(policy);
    policy.subscribe('_INBOX.credential.>');
    await policy.flush();
    expect(await violation).toBe('subscription _INBOX.credential.>');
  });

  it.each([
    ['delete', (jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>) => jsm.streams.delete(EVENTS_STREAM)],
    ['purge', (jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>) => jsm.streams.purge(EVENTS_STREAM)],
    ['create', (jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>) => jsm.streams.add({ name: 'EVIL', subjects: ['palisade.events.policy.evil.>'] })],
    ['delete the dead letters of', (jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>) => jsm.streams.delete(DEAD_LETTER_STREAM)],
  ])('does not let a service %s a stream', async (_what, attempt) => {
    const jsm = await policy.jetstreamManager({ checkAPI: false });
    const before = await (await admin.jetstreamManager({ checkAPI: false })).streams.info(EVENTS_STREAM);
    await expect(attempt(jsm)).rejects.toThrow(/permissions violation|timeout/i);
    const after = await (await admin.jetstreamManager({ checkAPI: false })).streams.info(EVENTS_STREAM);
    expect(after.state.messages).toBeGreaterThanOrEqual(before.state.messages);
    expect(after.created).toBe(before.created);
  });
});

describe('requests per method (deploy/local/nats-requests.txt)', () => {
  it('refuses a request to a method the service does not use, at once', async () => {
    for (const subject of ['palisade.rpc.policy.explain', 'palisade.rpc.audit.erase', 'palisade.rpc.credential.lease']) {
      await expect(rpcRequest(llmRouter, subject, {}, { timeoutMs: 3000 })).rejects.toMatchObject({ code: 'forbidden', message: `not permitted to request ${subject}` });
    }
    // nor in a namespace (the test permissions grant <subject>.* only for the methods listed)
    process.env.PALISADE_RPC_NAMESPACE = 'suite';
    try {
      await expect(rpcRequest(llmRouter, 'palisade.rpc.credential.lease', {}, { timeoutMs: 3000 })).rejects.toMatchObject({
        code: 'forbidden',
        message: 'not permitted to request palisade.rpc.credential.lease.suite',
      });
    } finally {
      delete process.env.PALISADE_RPC_NAMESPACE;
    }
    // credential asks the policy service for decisions: only that passes the server
    await expect(rpcRequest(credential, 'palisade.rpc.auth.verify-api-key', {}, { timeoutMs: 3000 })).rejects.toMatchObject({ code: 'forbidden' });
    const asked = await rpcRequest(credential, 'palisade.rpc.policy.authorize', {}, { timeoutMs: 3000 }).catch((e: PalisadeError) => e);
    expect(asked).not.toMatchObject({ code: 'forbidden' });
  });
});

describe('durable consumers pinned to their filter subject (deploy/local/nats-durables.txt)', () => {
  const durable = 'policy-inttest-pinned';
  const jsApi = async (nc: NatsConnection, subject: string, body: object) => {
    const reply = await nc.request(subject, JSON.stringify(body), { timeout: 2000 });
    return JSON.parse(new TextDecoder().decode(reply.data)) as { error?: { description: string }; config?: { filter_subject?: string } };
  };
  const filterOf = async () => (await (await admin.jetstreamManager({ checkAPI: false })).consumers.info(EVENTS_STREAM, durable)).config.filter_subject;

  beforeAll(() => deleteDurable(admin, EVENTS_STREAM, durable));
  afterAll(() => deleteDurable(admin, EVENTS_STREAM, durable));

  it('creates a durable with its listed filter (or a narrower one), and refuses to re-create it wider', async () => {
    const narrow = `palisade.events.policy.${runToken()}.>`;
    const jsm = await policy.jetstreamManager({ checkAPI: false });
    const config = { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New };
    await jsm.consumers.add(EVENTS_STREAM, { ...config, filter_subject: narrow });
    expect(await filterOf()).toBe(narrow);

    // every tenant's events, through each create subject there is
    await expect(jsm.consumers.add(EVENTS_STREAM, { ...config, filter_subject: 'palisade.events.>' })).rejects.toThrow(/permissions violation|timeout/i);
    await expect(jsm.consumers.add(EVENTS_STREAM, { ...config, filter_subject: 'palisade.events.auth.>' })).rejects.toThrow(/permissions violation|timeout/i);
    await expect(jsApi(policy, `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.${durable}`, { stream_name: EVENTS_STREAM, config: { ...config, filter_subject: 'palisade.events.>' } })).rejects.toThrow(/permissions violation|timeout/i);
    await expect(jsApi(policy, `$JS.API.CONSUMER.DURABLE.CREATE.${EVENTS_STREAM}.${durable}`, { stream_name: EVENTS_STREAM, config: { ...config, filter_subject: 'palisade.events.>' } })).rejects.toThrow(/permissions violation|timeout/i);
    // the filter in the subject must be the one in the config (checked by the server)
    const mismatch = await jsApi(policy, `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.${durable}.${narrow}`, { stream_name: EVENTS_STREAM, config: { ...config, filter_subject: 'palisade.events.>' } });
    expect(mismatch.error?.description).toMatch(/did not match filtered subject/);
    expect(await filterOf()).toBe(narrow);
  });

  it('does not let another service take a durable over through the revocation feed’s create permission', async () => {
    const jsm = await llmRouter.jetstreamManager({ checkAPI: false });
    await expect(
      jsm.consumers.add(EVENTS_STREAM, { durable_name: durable, ack_policy: AckPolicy.Explicit, filter_subject: 'palisade.events.auth.revocation.issued' }),
    ).rejects.toThrow(/permissions violation|timeout/i);
    expect(await filterOf()).not.toBe('palisade.events.auth.revocation.issued');
  });
});

describe('JetStreamEventPublisher against PALISADE_EVENTS', () => {
  it('stores an event published twice (same id) once', async () => {
    const publisher = new JetStreamEventPublisher(policy);
    const token = runToken();
    const type = `policy.${token}.created`;
    const first = testEvent('policy', type, { n: 1 });
    const second = testEvent('policy', type, { n: 2 });
    await publisher.publish([first, second]);
    await publisher.publish([first]); // the relay died mid-batch and sends it again
    await publisher.publish([first, second]);

    const jsm = await admin.jetstreamManager({ checkAPI: false });
    const subject = `palisade.events.${type}`;
    const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subject });
    expect(info.state.subjects?.[subject]).toBe(2);
  });

  it('refuses invalid events with a validation error naming the problem, and publishes none of the batch', async () => {
    const publisher = new JetStreamEventPublisher(policy);
    const token = runToken();
    const good = testEvent('policy', `policy.${token}.created`);
    const bad = { ...testEvent('policy', `policy.${token}.created`), tenantId: 'not a tenant' };
    const error = await publisher.publish([good, bad]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PalisadeError);
    expect((error as PalisadeError).code).toBe('validation');
    expect((error as PalisadeError).message).toContain('tenantId');
    const jsm = await admin.jetstreamManager({ checkAPI: false });
    const subject = `palisade.events.policy.${token}.created`;
    const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subject });
    expect(info.state.subjects?.[subject] ?? 0).toBe(0);
  });

  it('cannot publish another service’s events through JetStream either', async () => {
    const publisher = new JetStreamEventPublisher(policy, { ackTimeoutMs: 1500 });
    const forged = { ...testEvent('credential', `credential.${runToken()}.read`) };
    await expect(publisher.publish([forged])).rejects.toMatchObject({ code: 'unavailable' });
  });
});
