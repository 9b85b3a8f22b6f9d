import { randomBytes } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';
import { connectNats, rpcRequest, serveRpc, type NatsConnection, type RpcHandler, type RpcServer } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { infra } from '@palisade/testing';
import { SERVICE_SECRET_DELETE, SERVICE_SECRET_PUT, SERVICE_SECRET_READ, ServiceSecretsRpc } from '../src/service-secrets/service-secrets.rpc';
import { startVault, type Harness } from './support/harness';

// The service-secret methods over the shared TLS NATS of deploy/local/nats.sh, answered by
// ServiceSecretsRpc (as in the service) over a vault on a throw-away schema, asked with
// each service's own certificate. NATS permissions (deploy/local/nats-requests.txt) let
// only auth and llm-router ask (each its own scope); policy may ask service-secret-read in tests only (nats-requests.test.txt)
// so that the credential service's own check is seen to refuse it too.
// Every credential instance on this NATS shares the queue group `credential`: run it while
// no credential service is running on the same NATS (npm start, an e2e test), or another
// instance may answer auth's requests from its own database.
const marker = () => `MARKER-${randomBytes(8).toString('hex')}`;
const refusal = (p: Promise<unknown>) => p.then(() => 'answered', (e: PalisadeError) => ({ code: e.code, message: e.message }));

describe('service secrets over NATS request-reply', () => {
  let h: Harness;
  let server: RpcServer;
  const identities: ServiceIdentity[] = [];
  const connections: NatsConnection[] = [];
  const as: Record<'credential' | 'auth' | 'policy' | 'llm-router' | 'billing', NatsConnection> = {} as never;
  const debug: object[] = [];

  beforeAll(async () => {
    h = await startVault();
    for (const name of ['credential', 'auth', 'policy', 'llm-router', 'billing'] as const) {
      const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name });
      identities.push(identity);
      as[name] = await connectNats({ servers: infra('NATS_URL'), identity, name: `int-${name}-service-secrets` });
      connections.push(as[name]);
    }
    new ServiceSecretsRpc(h.serviceSecrets, {
      logger: { debug: (obj) => debug.push(obj) },
      answerRequests: (handlers: Readonly<Record<string, RpcHandler>>) => {
        server = serveRpc(as.credential, { service: 'credential', handlers });
      },
    });
    await as.credential.flush();
  });

  afterAll(async () => {
    await server?.stop();
    await Promise.all(connections.map((c) => c.close()));
    identities.forEach((i) => i.stop());
    await h?.close();
  });

  const reads = async (secretId: string) =>
    (await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'secretId' = $1 ORDER BY global_position`, [secretId])).map(
      (r: { envelope: { actor: unknown; data: unknown } }) => r.envelope,
    );

  it('lets auth put, read (recorded first) and delete its secrets, typed results and coded errors', async () => {
    const v1 = marker();
    const put = await rpcRequest<{ secretId: string; version: number }>(as.auth, SERVICE_SECRET_PUT, { tenantId: 'acme', name: 'idp.corp', value: v1 });
    expect(put).toEqual({ secretId: expect.any(String), version: 1 });
    expect(await rpcRequest(as.auth, SERVICE_SECRET_PUT, { tenantId: 'acme', name: 'idp.corp', value: marker() })).toEqual({ secretId: put.secretId, version: 2 });
    const read = await rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'acme', secretId: put.secretId, purpose: 'idp-sign-in' });
    expect(read).toEqual({ secretId: put.secretId, version: 2, value: expect.stringMatching(/^MARKER-/) });
    expect(await reads(put.secretId)).toEqual([expect.objectContaining({ actor: { type: 'service', id: 'auth' }, data: { secretId: put.secretId, version: 2, consumer: 'auth', purpose: 'idp-sign-in' } })]);
    expect(debug).toContainEqual({ subject: SERVICE_SECRET_READ, caller: 'auth', tenantId: 'acme', secretId: put.secretId });
    expect(JSON.stringify(debug)).not.toContain(v1);

    // Validation names the field; another tenant's secret is not found.
    expect(await refusal(rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'acme', secretId: put.secretId }))).toEqual({ code: 'validation', message: expect.stringContaining('purpose') });
    expect(await refusal(rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'acme', secretId: 'not-a-uuid', purpose: 'idp-sign-in' }))).toMatchObject({ code: 'validation', message: expect.stringContaining('secretId') });
    expect(await refusal(rpcRequest(as.auth, SERVICE_SECRET_PUT, { tenantId: 'acme', name: 'idp/x', value: 'v' }))).toMatchObject({ code: 'validation', message: expect.stringContaining('name') });
    expect(await refusal(rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'globex', secretId: put.secretId, purpose: 'idp-sign-in' }))).toMatchObject({ code: 'not_found' });

    expect(await rpcRequest(as.auth, SERVICE_SECRET_DELETE, { tenantId: 'acme', secretId: put.secretId })).toEqual({ secretId: put.secretId, versionsDestroyed: [1, 2] });
    expect(await refusal(rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'acme', secretId: put.secretId, purpose: 'idp-sign-in' }))).toMatchObject({ code: 'not_found' });
  });

  it('refuses every other service: NATS does not let it ask, and the credential service refuses it if it could', async () => {
    const { secretId } = await rpcRequest<{ secretId: string }>(as.auth, SERVICE_SECRET_PUT, { tenantId: 'acme', name: 'idp.okta', value: marker() });
    // billing may not ask any of the methods (NATS permissions: only auth and llm-router).
    for (const [subject, payload] of [
      [SERVICE_SECRET_PUT, { tenantId: 'acme', name: 'idp.x', value: 'v' }],
      [SERVICE_SECRET_READ, { tenantId: 'acme', secretId, purpose: 'idp-sign-in' }],
      [SERVICE_SECRET_DELETE, { tenantId: 'acme', secretId }],
    ] as const) {
      expect(await refusal(rpcRequest(as.billing, subject, payload, { timeoutMs: 3000 }))).toEqual({ code: 'forbidden', message: `not permitted to request ${subject}` });
    }
    // llm-router may ask (its provider keys), but auth's secret is outside its scope: not found, nothing read
    expect(await refusal(rpcRequest(as['llm-router'], SERVICE_SECRET_READ, { tenantId: 'acme', secretId, purpose: 'provider-call' }, { timeoutMs: 3000 }))).toMatchObject({ code: 'not_found' });
    expect(await refusal(rpcRequest(as['llm-router'], SERVICE_SECRET_DELETE, { tenantId: 'acme', secretId }, { timeoutMs: 3000 }))).toMatchObject({ code: 'not_found' });
    // policy may ask service-secret-read here (test permissions only): the credential service refuses it.
    expect(await refusal(rpcRequest(as.policy, SERVICE_SECRET_READ, { tenantId: 'acme', secretId, purpose: 'idp-sign-in' }))).toEqual({ code: 'forbidden', message: 'policy keeps no secrets in the vault' });
    expect(await reads(secretId)).toEqual([]);
    // The secret is intact: auth still reads it.
    expect(await rpcRequest(as.auth, SERVICE_SECRET_READ, { tenantId: 'acme', secretId, purpose: 'idp-sign-in' })).toMatchObject({ secretId, version: 1 });
  });
});
