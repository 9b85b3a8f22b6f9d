import { randomBytes } from 'node:crypto';
import { headers as natsHeaders, type NatsConnection } from 'nats';
import { PalisadeError, rpcSubject } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { rpcRequest, rpcWireSubject, serveRpc, signCaller, type RpcCaller, type RpcHandler, type RpcServer } from '../src';
import { connectAs, serviceIdentity } from './helpers';

// Issue 10 over the TLS NATS of deploy/local/nats.sh: NATS lets llm-router publish a
// request to the policy service naming sandbox-orchestrator's inbox as its reply
// subject. It never sees the answer (sandbox-orchestrator's inbox is readable only by
// sandbox-orchestrator), but the side effect must not happen in that service's name.
// The handler below redeems as the policy service does: only for a proven caller that
// is the service the approval names.
const AUTHORIZE = rpcSubject('policy', 'authorize');
const AUTHORIZE_BATCH = rpcSubject('policy', 'authorize-batch');
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const seen: RpcCaller[] = [];
const consumed: string[] = [];
const redeem: RpcHandler = (payload, _subject, _caller, asker) => {
  seen.push(asker);
  if (!asker.proven) throw new PalisadeError('forbidden', 'an approval is redeemed only in a signed request');
  if (asker.service !== 'sandbox-orchestrator') throw new PalisadeError('forbidden', 'approval is for the sandbox-orchestrator service');
  consumed.push((payload as { approval: string }).approval);
  return { consumed: true };
};

const identities: ServiceIdentity[] = [];
const connections: NatsConnection[] = [];
let policy: ServiceIdentity;
let orchestrator: ServiceIdentity;
let router: ServiceIdentity;
let policyNc: NatsConnection;
let orchestratorNc: NatsConnection;
let routerNc: NatsConnection;
const servers: RpcServer[] = [];
const namespaceBefore = process.env.PALISADE_RPC_NAMESPACE;

beforeAll(async () => {
  // our own subjects: never answered by (or answering) a policy service running on this NATS
  process.env.PALISADE_RPC_NAMESPACE = `caller${randomBytes(4).toString('hex')}`;
  [policy, orchestrator, router] = await Promise.all([serviceIdentity('policy'), serviceIdentity('sandbox-orchestrator'), serviceIdentity('llm-router')]);
  identities.push(policy, orchestrator, router);
  [policyNc, orchestratorNc, routerNc] = await Promise.all([connectAs(policy, 'int-policy'), connectAs(orchestrator, 'int-orchestrator'), connectAs(router, 'int-router')]);
  connections.push(policyNc, orchestratorNc, routerNc);
  servers.push(serveRpc(policyNc, { service: 'policy', trust: policy, handlers: { [AUTHORIZE]: redeem } }));
  // a service that was given no trust cannot verify a signature: refused, never taken as proven
  servers.push(serveRpc(policyNc, { service: 'policy', handlers: { [AUTHORIZE_BATCH]: redeem } }));
  await policyNc.flush();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(connections.map((nc) => nc.drain().catch(() => undefined)));
  identities.forEach((i) => i.stop());
  if (namespaceBefore === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
  else process.env.PALISADE_RPC_NAMESPACE = namespaceBefore;
});

beforeEach(() => {
  seen.length = 0;
  consumed.length = 0;
});

/** What arrives in sandbox-orchestrator's inbox when llm-router publishes `publish(reply)` naming it as the reply subject. */
async function answerInOrchestratorInbox(publish: (reply: string) => Promise<void> | void): Promise<unknown> {
  const inbox = `_INBOX.sandbox-orchestrator.forged${randomBytes(4).toString('hex')}`;
  const answers = orchestratorNc.subscribe(`${inbox}.>`, { max: 1, timeout: 5000 });
  await orchestratorNc.flush();
  await publish(`${inbox}.1`);
  await routerNc.flush();
  for await (const m of answers) return JSON.parse(decoder.decode(m.data));
  throw new Error('no answer arrived');
}

describe('a request naming another service inbox as its reply subject (issue 10)', () => {
  it('is only inbox-named, never proven, when unsigned: the redemption is refused and nothing is consumed', async () => {
    const answer = await answerInOrchestratorInbox((reply) => routerNc.publish(rpcWireSubject(AUTHORIZE), encoder.encode(JSON.stringify({ approval: 'a-1' })), { reply }));
    expect(answer).toEqual({ error: { code: 'forbidden', message: 'an approval is redeemed only in a signed request' } });
    expect(seen).toEqual([{ service: 'sandbox-orchestrator', proven: false }]);
    expect(consumed).toEqual([]);
  });

  it("is refused (403 naming why) when signed by the publisher for another service's inbox, before any handler", async () => {
    const answer = await answerInOrchestratorInbox(async (reply) => {
      const subject = rpcWireSubject(AUTHORIZE);
      const data = encoder.encode(JSON.stringify({ approval: 'a-2' }));
      const h = natsHeaders();
      h.set('Palisade-Caller', await signCaller(router, subject, reply, data));
      routerNc.publish(subject, data, { reply, headers: h });
    });
    expect(answer).toEqual({ error: { code: 'forbidden', message: 'Palisade-Caller: signed by llm-router, but the reply goes to the inbox of sandbox-orchestrator' } });
    expect(seen).toEqual([]);
    expect(consumed).toEqual([]);
  });
});

describe('a request signed by the service the approval names', () => {
  it('reaches the handler with a proven caller, and is redeemed', async () => {
    await expect(rpcRequest(orchestratorNc, AUTHORIZE, { approval: 'a-3' }, { signAs: orchestrator })).resolves.toEqual({ consumed: true });
    expect(seen).toEqual([{ service: 'sandbox-orchestrator', proven: true }]);
    expect(consumed).toEqual(['a-3']);
  });

  it('is not proven when unsigned, even from that service itself', async () => {
    await expect(rpcRequest(orchestratorNc, AUTHORIZE, { approval: 'a-4' })).rejects.toMatchObject({ code: 'forbidden' });
    expect(seen).toEqual([{ service: 'sandbox-orchestrator', proven: false }]);
    expect(consumed).toEqual([]);
  });

  it('is refused by a responder given no trust to verify it', async () => {
    await expect(rpcRequest(orchestratorNc, AUTHORIZE_BATCH, { approval: 'a-5' }, { signAs: orchestrator })).rejects.toMatchObject({
      code: 'forbidden',
      message: 'Palisade-Caller: this service does not verify signed requests',
    });
    expect(seen).toEqual([]);
  });
});
