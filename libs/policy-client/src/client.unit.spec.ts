import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyCaller, type NatsConnection } from '@palisade/nats';
import { ensureCa, issueCertificate } from '@palisade/pki';
import { PolicyClient } from './client';
import { AUTHORIZE_BATCH_SUBJECT, AUTHORIZE_SUBJECT, type AuthorizeDecision, type AuthorizeRequest } from './types';

// A stand-in for the NATS connection: records what is asked and answers like the
// policy service's wire format ({ result } / { error }), or fails like NATS.
type Answer = (subject: string, body: unknown) => unknown;
/** A connection that answers requests (publishes with a reply subject) from `answer`, as a policy service would. */
function fakeNats(answer: Answer) {
  const asked: Array<{ subject: string; body: any; reply: string; data: Uint8Array; signature?: string }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  let inbox: ((error: null, msg: { subject: string; data: Uint8Array; headers?: { code: number } }) => void) | undefined;
  const nc = {
    isClosed: () => false,
    closed: () => new Promise(() => undefined),
    status: async function* () {},
    subscribe: (_subject: string, options: { callback: typeof inbox }) => void (inbox = options.callback),
    publish: (subject: string, data: Uint8Array, options: { reply: string; headers?: { get(k: string): string } }) => {
      const body = JSON.parse(new TextDecoder().decode(data));
      const signature = options.headers?.get('Palisade-Caller') || undefined;
      asked.push({ subject, body, reply: options.reply, data, ...(signature ? { signature } : {}) });
      const reply = answer(subject, body);
      // A failing service: the server's "no responders" status reply.
      const msg = reply instanceof Error ? { data: new Uint8Array(0), headers: { code: 503 } } : { data: new TextEncoder().encode(JSON.stringify(reply)) };
      queueMicrotask(() => inbox?.(null, { subject: options.reply, ...msg }));
    },
  } as unknown as NatsConnection;
  return { nc, asked };
}

const ask = (action: string): AuthorizeRequest => ({ tenantId: 'acme', subject: { type: 'user', id: 'alice' }, action, resource: { type: 'document' } });
const decide = (r: AuthorizeRequest): AuthorizeDecision =>
  r.action.startsWith('read') ? { decision: 'allow', rule: `p/${r.action}`, reason: 'ok' } : { decision: 'deny', rule: 'default-deny', reason: 'no' };
const service: Answer = (subject, body) =>
  subject === AUTHORIZE_BATCH_SUBJECT
    ? { result: { decisions: (body as { requests: AuthorizeRequest[] }).requests.map(decide) } }
    : { result: decide(body as AuthorizeRequest) };

describe('PolicyClient: concurrent decisions coalesced into batch requests', () => {
  it('sends decisions asked together as one batch and gives each caller its own answer, in order', async () => {
    const { nc, asked } = fakeNats(service);
    const client = new PolicyClient({ nc, cacheSize: 0 });
    const answers = await Promise.all(['read-1', 'write', 'read-2'].map((a) => client.authorize(ask(a))));
    expect(answers.map((d) => d.rule)).toEqual(['p/read-1', 'default-deny', 'p/read-2']);
    expect(asked).toHaveLength(1);
    expect(asked[0].subject).toBe(AUTHORIZE_BATCH_SUBJECT);
    expect(asked[0].body.requests.map((r: AuthorizeRequest) => r.action)).toEqual(['read-1', 'write', 'read-2']);
  });

  it('sends a decision asked alone as a single request, and splits large groups at the coalescing bound', async () => {
    const { nc, asked } = fakeNats(service);
    const client = new PolicyClient({ nc, cacheSize: 0, coalesce: 4 });
    await expect(client.authorize(ask('read'))).resolves.toMatchObject({ decision: 'allow' });
    expect(asked.map((a) => a.subject)).toEqual([AUTHORIZE_SUBJECT]);
    asked.length = 0;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => client.authorize(ask(`read-${i}`))));
    expect(answers.map((d) => d.rule)).toEqual(Array.from({ length: 10 }, (_, i) => `p/read-${i}`));
    expect(asked.map((a) => a.body.requests?.length ?? 1)).toEqual([4, 4, 2]);
  });

  it('asks each decision on its own when coalescing is off', async () => {
    const { nc, asked } = fakeNats(service);
    const client = new PolicyClient({ nc, cacheSize: 0, coalesce: 1 });
    await Promise.all(['read-1', 'read-2'].map((a) => client.authorize(ask(a))));
    expect(asked.map((a) => a.subject)).toEqual([AUTHORIZE_SUBJECT, AUTHORIZE_SUBJECT]);
  });

  it('does not let one malformed request deny the others: after a validation error each is asked on its own', async () => {
    const { nc, asked } = fakeNats((subject, body) => {
      const requests = subject === AUTHORIZE_BATCH_SUBJECT ? (body as { requests: AuthorizeRequest[] }).requests : [body as AuthorizeRequest];
      const bad = requests.findIndex((r) => r.action === 'not an action');
      if (bad >= 0) return { error: { code: 'validation', message: `${subject === AUTHORIZE_BATCH_SUBJECT ? `requests.${bad}.` : ''}action: must be a name` } };
      return service(subject, body);
    });
    const client = new PolicyClient({ nc, cacheSize: 0 });
    const answers = await Promise.all(['read', 'not an action', 'write'].map((a) => client.authorize(ask(a))));
    expect(answers.map((d) => [d.decision, d.rule])).toEqual([
      ['allow', 'p/read'],
      ['deny', 'policy-unavailable'],
      ['deny', 'default-deny'],
    ]);
    expect(asked.map((a) => a.subject)).toEqual([AUTHORIZE_BATCH_SUBJECT, AUTHORIZE_SUBJECT, AUTHORIZE_SUBJECT, AUTHORIZE_SUBJECT]);
  });

  it('fails closed: a failed batch denies every decision in it, and a malformed answer denies', async () => {
    const down = new PolicyClient({ nc: fakeNats(() => Object.assign(new Error('timeout'), { code: 'TIMEOUT' })).nc, cacheSize: 0 });
    const denied = await Promise.all(['read-1', 'read-2'].map((a) => down.authorize(ask(a))));
    expect(denied.map((d) => [d.decision, d.rule])).toEqual([
      ['deny', 'policy-unavailable'],
      ['deny', 'policy-unavailable'],
    ]);
    const short = new PolicyClient({ nc: fakeNats(() => ({ result: { decisions: [{ decision: 'allow', rule: 'x', reason: 'ok' }] } })).nc, cacheSize: 0 });
    const answers = await Promise.all(['read-1', 'read-2'].map((a) => short.authorize(ask(a))));
    expect(answers.every((d) => d.decision === 'deny' && d.rule === 'policy-unavailable')).toBe(true);
    const odd = new PolicyClient({ nc: fakeNats(() => ({ result: { decisions: [{ decision: 'maybe' }, { decision: 'allow', rule: 'x', reason: 'ok' }] } })).nc, cacheSize: 0 });
    const mixed = await Promise.all(['read-1', 'read-2'].map((a) => odd.authorize(ask(a))));
    expect(mixed.map((d) => d.decision)).toEqual(['deny', 'allow']);
  });

  it('caches answers from a batch, but never a failure', async () => {
    let up = false;
    const { nc, asked } = fakeNats((subject, body) => (up ? service(subject, body) : new Error('no responders')));
    const client = new PolicyClient({ nc });
    await Promise.all(['read-1', 'read-2'].map((a) => client.authorize(ask(a))));
    expect(client.cached).toBe(0);
    up = true;
    await Promise.all(['read-1', 'read-2'].map((a) => client.authorize(ask(a))));
    expect(client.cached).toBe(2);
    const before = asked.length;
    await expect(client.authorize(ask('read-1'))).resolves.toMatchObject({ decision: 'allow' });
    expect(asked.length).toBe(before);
  });

  it('never caches a denial the service gave because it could not decide (stale policy state, a failure)', async () => {
    let rule = 'policy-stale';
    const { nc, asked } = fakeNats(() => ({ result: { decision: 'deny', rule, reason: 'the policy state may be stale' } }));
    const client = new PolicyClient({ nc, coalesce: 1 });
    await client.authorize(ask('read-1'));
    rule = 'decision-failed';
    await client.authorize(ask('read-1'));
    expect(client.cached).toBe(0);
    expect(asked).toHaveLength(2);
    rule = 'default-deny';
    await client.authorize(ask('read-1'));
    expect(client.cached).toBe(1);
  });
});

describe('PolicyClient: redeeming an approval (issue 10)', () => {
  let dir: string;
  let caPem: string;
  let identity: { current(): { certPem: string; keyPem: string } };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'palisade-policy-client-'));
    const { ca } = await ensureCa(dir);
    const issued = await issueCertificate(ca, { kind: 'service', name: 'sandbox-orchestrator' });
    caPem = ca.certPem;
    identity = { current: () => ({ certPem: issued.certPem, keyPem: issued.keyPem }) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const redeem = (action: string): AuthorizeRequest => ({ ...ask(action), approvalToken: `${'0'.repeat(36)}.${'a'.repeat(43)}` });

  it('signs the request that carries an approval token, as the service, and sends it alone; other decisions stay unsigned and batched', async () => {
    const { nc, asked } = fakeNats(service);
    const client = new PolicyClient({ nc, cacheSize: 0, signAs: identity });
    await Promise.all([client.authorize(ask('read-1')), client.authorize(redeem('write')), client.authorize(ask('read-2'))]);
    const signed = asked.filter((a) => a.signature);
    expect(signed.map((a) => [a.subject, a.body.action])).toEqual([[AUTHORIZE_SUBJECT, 'write']]);
    // the signature is about that very request (subject, reply, payload: all checked before
    // the inbox, which this stand-in connection does not name after the service)
    await expect(verifyCaller(signed[0].signature!, { subject: signed[0].subject, reply: signed[0].reply, data: signed[0].data }, caPem)).rejects.toMatchObject({
      message: 'Palisade-Caller: signed by sandbox-orchestrator, but the reply goes to no service inbox',
    });
    expect(asked.filter((a) => !a.signature).map((a) => [a.subject, a.body.requests.map((r: AuthorizeRequest) => r.action)])).toEqual([[AUTHORIZE_BATCH_SUBJECT, ['read-1', 'read-2']]]);
  });

  it('signs a batch only when one of its requests redeems an approval', async () => {
    const { nc, asked } = fakeNats(service);
    const client = new PolicyClient({ nc, cacheSize: 0, signAs: identity });
    await client.authorizeBatch([ask('read-1'), ask('read-2')]);
    await client.authorizeBatch([ask('read-1'), redeem('write')]);
    expect(asked.map((a) => a.signature !== undefined)).toEqual([false, true]);
  });
});
