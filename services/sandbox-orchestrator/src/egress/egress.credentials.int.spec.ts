import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { issueCertificate, loadCa } from '@palisade/pki';
import { CredentialServiceLeases, type LeaseContext } from './egress.credentials';

/**
 * The credential-service adapter against a local stand-in of its two routes (the wire
 * contract of services/credential's README): grant with the bearer token, redeem over mTLS
 * with the orchestrator's client certificate (the stand-in refuses a connection without one).
 */
const VALUE = `value-${randomUUID()}`;
const context: LeaseContext = { tenantId: 'acme', sessionId: 'session-1', sandboxId: randomUUID(), tool: 'gerrit', secretId: randomUUID() };
const seen: Array<{ path?: string; body: unknown; authorization?: string; clientCn?: string }> = [];
let server: Server;
let baseUrl = '';
let client: { cert: string; key: string; ca: string };
let mode: 'ok' | 'used' = 'ok';

beforeAll(async () => {
  const ca = await loadCa(join(__dirname, '../../../../.palisade/pki'));
  const serverCert = await issueCertificate(ca, { kind: 'service', name: 'credential' });
  const clientCert = await issueCertificate(ca, { kind: 'service', name: 'sandbox-orchestrator' });
  client = { cert: clientCert.certPem, key: clientCert.keyPem, ca: clientCert.caPem };
  server = createServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca: serverCert.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ path: req.url, body, authorization: req.headers.authorization, clientCn: peer.subject?.CN as string | undefined });
      if (req.url === '/v1/leases') return void res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ leaseId: 'l1', token: 'pl_lease', ...body }));
      if (mode === 'used') return void res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'conflict', message: `lease used (${VALUE})` }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: VALUE, secretId: context.secretId, version: 1 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));

describe('CredentialServiceLeases', () => {
  it('grants a one-use lease bound to session and tool, then redeems it over mTLS for the value', async () => {
    const leases = new CredentialServiceLeases({ baseUrl, grantToken: async () => 'agent-token', tls: client });
    expect(await leases.value(context)).toBe(VALUE);
    expect(seen).toEqual([
      { path: '/v1/leases', body: { secretId: context.secretId, sessionId: 'session-1', tool: 'gerrit', ttlSeconds: 30, uses: 1 }, authorization: 'Bearer agent-token', clientCn: 'sandbox-orchestrator' },
      { path: '/internal/v1/leases/redeem', body: { token: 'pl_lease', tenantId: 'acme', sessionId: 'session-1', tool: 'gerrit' }, authorization: undefined, clientCn: 'sandbox-orchestrator' },
    ]);
  });

  it('reads the TLS material per request when given a function (the service identity renews without a restart)', async () => {
    let reads = 0;
    const leases = new CredentialServiceLeases({ baseUrl, grantToken: async () => 'agent-token', tls: () => (reads++, client) });
    expect(await leases.value(context)).toBe(VALUE);
    expect(reads).toBe(2);
  });

  it('a refusal is an error naming the status and code, never the body (which could hold anything)', async () => {
    mode = 'used';
    const leases = new CredentialServiceLeases({ baseUrl, grantToken: async () => 'agent-token', tls: client });
    const error = (await leases.value(context).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('credential service /internal/v1/leases/redeem: 409 conflict');
    expect(error.message).not.toContain(VALUE);
  });

  it('without the client certificate the credential service is not reached', async () => {
    const leases = new CredentialServiceLeases({ baseUrl, grantToken: async () => 'agent-token', tls: { cert: '', key: '', ca: client.ca } });
    await expect(leases.value(context)).rejects.toThrow(/credential service \/v1\/leases/);
  });
});
