import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ensureCa, issueCertificate, type IssuedCertificate } from '@palisade/pki';
import { signCaller, verifyCaller, type RpcSigner } from './rpc-caller';

// The Palisade-Caller signature (issue 10): who sent a NATS request, proven by the
// sender's certificate, bound to this one message. Every way of presenting a signature
// that is not about this message, not from the platform CA or not of the service whose
// inbox gets the answer is refused.
const dirs: string[] = [];
let platform: { caPem: string; orchestrator: IssuedCertificate; billing: IssuedCertificate };
let foreign: IssuedCertificate;

const signerOf = (issued: IssuedCertificate): RpcSigner => ({ current: () => ({ certPem: issued.certPem, keyPem: issued.keyPem }) });
const subject = 'palisade.rpc.policy.authorize';
const reply = '_INBOX.sandbox-orchestrator.abc123.7';
const data = new TextEncoder().encode(JSON.stringify({ action: 'sandbox.exec', approvalToken: 'x' }));
const message = { subject, reply, data };
const now = new Date();

async function caIn(): Promise<Awaited<ReturnType<typeof ensureCa>>['ca']> {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-caller-'));
  dirs.push(dir);
  return (await ensureCa(dir)).ca;
}

beforeAll(async () => {
  const ca = await caIn();
  platform = {
    caPem: ca.certPem,
    orchestrator: await issueCertificate(ca, { kind: 'service', name: 'sandbox-orchestrator' }),
    billing: await issueCertificate(ca, { kind: 'service', name: 'billing' }),
  };
  foreign = await issueCertificate(await caIn(), { kind: 'service', name: 'sandbox-orchestrator' });
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('Palisade-Caller: a signed NATS request', () => {
  it('proves the service of the certificate when it is about this very message', async () => {
    const jws = await signCaller(signerOf(platform.orchestrator), subject, reply, data, now);
    await expect(verifyCaller(jws, message, platform.caPem, now)).resolves.toBe('sandbox-orchestrator');
  });

  it.each([
    ['another subject', { ...message, subject: 'palisade.rpc.policy.authorize-batch' }, 'signed for another subject'],
    ['another reply subject', { ...message, reply: '_INBOX.sandbox-orchestrator.abc123.8' }, 'signed for another reply subject'],
    ['another payload', { ...message, data: new TextEncoder().encode('{"action":"sandbox.exec","approvalToken":"y"}') }, 'signed for another payload'],
  ])('is refused for %s', async (_what, received, why) => {
    const jws = await signCaller(signerOf(platform.orchestrator), subject, reply, data, now);
    await expect(verifyCaller(jws, received, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: `Palisade-Caller: ${why}` });
  });

  it('is refused once expired (30 s), and when signed too far in the future', async () => {
    const jws = await signCaller(signerOf(platform.orchestrator), subject, reply, data, now);
    await expect(verifyCaller(jws, message, platform.caPem, new Date(now.getTime() + 40_000))).rejects.toMatchObject({ code: 'forbidden', message: expect.stringMatching(/^Palisade-Caller: the signature is not valid \(.*exp/) });
    const future = await signCaller(signerOf(platform.orchestrator), subject, reply, data, new Date(now.getTime() + 60_000));
    await expect(verifyCaller(future, message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('is refused when it claims a longer life than 30 s', async () => {
    const key = createPrivateKey(platform.orchestrator.keyPem);
    const x5c = [new X509Certificate(platform.orchestrator.certPem).raw.toString('base64')];
    const iat = Math.floor(now.getTime() / 1000);
    const jws = await new SignJWT({ nats_subject: subject, nats_reply: reply, payload_sha256: 'ignored' })
      .setProtectedHeader({ alg: 'ES256', typ: 'palisade-caller+jwt', x5c })
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(key);
    await expect(verifyCaller(jws, message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: 'Palisade-Caller: the signature is valid for more than 30 s' });
  });

  it('is refused when the certificate is not from the platform CA (even naming the right service)', async () => {
    const jws = await signCaller(signerOf(foreign), subject, reply, data, now);
    await expect(verifyCaller(jws, message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: 'Palisade-Caller: the certificate is not issued by the platform CA' });
  });

  it("is refused when another service signs for this service's inbox", async () => {
    // billing publishes a request whose answer goes to sandbox-orchestrator's inbox
    const jws = await signCaller(signerOf(platform.billing), subject, reply, data, now);
    await expect(verifyCaller(jws, message, platform.caPem, now)).rejects.toMatchObject({
      code: 'forbidden',
      message: 'Palisade-Caller: signed by billing, but the reply goes to the inbox of sandbox-orchestrator',
    });
  });

  it("is refused when another service presents this service's certificate with its own key", async () => {
    const forged: RpcSigner = { current: () => ({ certPem: platform.orchestrator.certPem, keyPem: platform.billing.keyPem }) };
    const jws = await signCaller(forged, subject, reply, data, now);
    await expect(verifyCaller(jws, message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('Palisade-Caller: the signature is not valid') });
  });

  it('is refused when it is not a JWS or carries no certificate', async () => {
    await expect(verifyCaller('garbage', message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: 'Palisade-Caller: not a compact JWS' });
    const bare = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('10s').sign(createPrivateKey(platform.orchestrator.keyPem));
    await expect(verifyCaller(bare, message, platform.caPem, now)).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('x5c') });
  });
});
