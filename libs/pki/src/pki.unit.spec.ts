import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CA_COMMON_NAME,
  ServiceIdentity,
  caFiles,
  ensureCa,
  issueCertificate,
  issueToDirectory,
  serviceOfSpiffeId,
  spiffeIdOf,
  type IdentityMaterial,
} from './index';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const HOUR = 3600_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'palisade-pki-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const nextRenewal = (identity: ServiceIdentity) =>
  new Promise<IdentityMaterial>((resolve) => {
    const off = identity.onRenew((m) => {
      off();
      resolve(m);
    });
  });

describe('development CA', () => {
  it('is created once, self-signed for ten years, with a private key only its owner reads', async () => {
    const first = await ensureCa(dir);
    const second = await ensureCa(dir);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.ca.certPem).toBe(first.ca.certPem);

    const cert = new X509Certificate(readFileSync(caFiles(dir).cert));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain(`CN=${CA_COMMON_NAME}`);
    expect(cert.checkIssued(cert) && cert.verify(cert.publicKey)).toBe(true);
    const years = (cert.validToDate.getTime() - Date.now()) / (365.25 * 24 * HOUR);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(statSync(caFiles(dir).key).mode & 0o777).toBe(0o600);
  });

  it('is created once when several processes start at the same time', async () => {
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => ensureCa(dir)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.ca.certPem)).size).toBe(1);
  });
});

describe('leaf certificates', () => {
  it('name a service by its SPIFFE ID, serve and authenticate clients, live 24 h and chain to the CA', async () => {
    const { ca } = await ensureCa(dir);
    const issued = await issueCertificate(ca, { kind: 'service', name: 'policy' });
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.certPem);

    expect(cert.subjectAltName).toBe('URI:spiffe://palisade.local/service/policy, DNS:localhost, IP Address:127.0.0.1');
    expect(issued.spiffeId).toBe('spiffe://palisade.local/service/policy');
    expect([...(cert.keyUsage ?? [])].sort()).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    const hours = (cert.validToDate.getTime() - Date.now()) / HOUR;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24 + 1 / 3600); // rounded up to the whole second
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('is not verified by another CA', async () => {
    const { ca } = await ensureCa(dir);
    const { ca: other } = await ensureCa(join(dir, 'other'));
    const cert = new X509Certificate((await issueCertificate(ca, { kind: 'service', name: 'audit' })).certPem);
    const otherCert = new X509Certificate(other.certPem);
    expect(cert.verify(otherCert.publicKey)).toBe(false);
  });

  it('give infrastructure servers the names asked for', async () => {
    const { ca } = await ensureCa(dir);
    const issued = await issueCertificate(ca, { kind: 'server', name: 'kafka', dns: ['kafka', 'localhost'], ips: ['127.0.0.1', '::1'] });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe('DNS:kafka, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect([...(cert.keyUsage ?? [])].sort()).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(issued.spiffeId).toBeUndefined();
  });

  it('give administrators a client-only certificate with an admin SPIFFE ID and the asked lifetime', async () => {
    const { ca } = await ensureCa(dir);
    const issued = await issueCertificate(ca, { kind: 'admin', name: 'platform', lifetimeMs: 2 * HOUR });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe('URI:spiffe://palisade.local/admin/platform');
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect((cert.validToDate.getTime() - Date.now()) / HOUR).toBeCloseTo(2, 1);
  });

  it.each([
    [{ kind: 'service', name: 'mailer' }, 'not a Palisade service'],
    [{ kind: 'robot', name: 'x' }, 'unknown certificate kind'],
    [{ kind: 'server', name: 'Bad Name' }, 'invalid name'],
    [{ kind: 'server', name: 'nats', ips: ['localhost'] }, 'invalid IP address'],
    [{ kind: 'server', name: 'nats', dns: ['a b'] }, 'invalid DNS name'],
    [{ kind: 'admin', name: 'platform', lifetimeMs: -1 }, 'invalid lifetime'],
  ])('refuses %j', async (req, message) => {
    const { ca } = await ensureCa(dir);
    await expect(issueCertificate(ca, req as never)).rejects.toThrow(message);
  });
});

describe('issuing into a directory (scripts)', () => {
  const req = { kind: 'server' as const, name: 'nats', dns: ['localhost'], ips: ['127.0.0.1'], lifetimeMs: 3 * HOUR };

  it('writes cert, key (0600) and CA, then keeps them while they are fresh', async () => {
    const out = join(dir, 'nats');
    const first = await issueToDirectory(join(dir, 'pki'), req, out);
    expect(first).toMatchObject({ issued: true, reason: 'missing' });
    expect(statSync(first.files.key).mode & 0o777).toBe(0o600);
    expect(readFileSync(first.files.ca, 'utf8')).toBe(readFileSync(caFiles(join(dir, 'pki')).cert, 'utf8'));
    const certPem = readFileSync(first.files.cert, 'utf8');

    const second = await issueToDirectory(join(dir, 'pki'), req, out);
    expect(second).toMatchObject({ issued: false });
    expect(readFileSync(second.files.cert, 'utf8')).toBe(certPem);
  });

  it('reissues when a third of the lifetime is left, when the names change, or when the key is not the certificate’s', async () => {
    const pkiDir = join(dir, 'pki');
    const out = join(dir, 'nats');
    await issueToDirectory(pkiDir, req, out);
    const inTwoHours = new Date(Date.now() + 2.1 * HOUR);
    expect(await issueToDirectory(pkiDir, { ...req, now: inTwoHours }, out)).toMatchObject({ issued: true, reason: 'expiring' });
    expect(await issueToDirectory(pkiDir, { ...req, dns: ['nats'] }, out)).toMatchObject({ issued: true, reason: 'names changed' });
    writeFileSync(join(out, 'key.pem'), (await issueCertificate((await ensureCa(pkiDir)).ca, req)).keyPem);
    expect(await issueToDirectory(pkiDir, { ...req, dns: ['nats'] }, out)).toMatchObject({
      issued: true,
      reason: 'key does not match certificate',
    });
  });

  it('reissues when the CA was replaced', async () => {
    const pkiDir = join(dir, 'pki');
    const out = join(dir, 'nats');
    await issueToDirectory(pkiDir, req, out);
    rmSync(pkiDir, { recursive: true });
    expect(await issueToDirectory(pkiDir, req, out)).toMatchObject({ issued: true, reason: 'CA changed' });
  });
});

describe('ServiceIdentity', () => {
  it('issues its own certificate from the dev CA and renews it at two thirds of its lifetime', async () => {
    await ensureCa(dir);
    const identity = await ServiceIdentity.fromDevCa({ caDir: dir, name: 'billing', lifetimeMs: 1500 });
    try {
      const first = identity.current();
      expect(first.spiffeId).toBe('spiffe://palisade.local/service/billing');
      expect(identity.tlsOptions()).toMatchObject({ cert: first.certPem, key: first.keyPem, minVersion: 'TLSv1.3' });

      const started = Date.now();
      const renewed = await nextRenewal(identity);
      expect(Date.now() - started).toBeGreaterThan(700);
      expect(renewed.certPem).not.toBe(first.certPem);
      expect(renewed.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
      expect(identity.current()).toBe(renewed);
      expect(identity.tlsOptions().cert).toBe(renewed.certPem);
      const again = await nextRenewal(identity);
      expect(again.certPem).not.toBe(renewed.certPem);
    } finally {
      identity.stop();
    }
  });

  it('stops renewing when stopped', async () => {
    await ensureCa(dir);
    const identity = await ServiceIdentity.fromDevCa({ caDir: dir, name: 'billing', lifetimeMs: 600 });
    const renewals: IdentityMaterial[] = [];
    identity.onRenew((m) => renewals.push(m));
    identity.stop();
    await new Promise((r) => setTimeout(r, 800));
    expect(renewals).toHaveLength(0);
  });

  it('reloads certificate files when an agent rewrites them, and ignores a key that does not match', async () => {
    const pkiDir = join(dir, 'pki');
    const out = join(dir, 'policy');
    const req = { kind: 'service' as const, name: 'policy' };
    const { files } = await issueToDirectory(pkiDir, req, out);
    const identity = await ServiceIdentity.fromFiles({ certFile: files.cert, keyFile: files.key, caFile: files.ca, pollIntervalMs: 50 });
    try {
      const first = identity.current();
      const renewals: IdentityMaterial[] = [];
      identity.onRenew((m) => renewals.push(m));

      const { ca } = await ensureCa(pkiDir);
      const next = await issueCertificate(ca, req);
      writeFileSync(files.cert, next.certPem); // key not yet rewritten: mismatched pair
      await new Promise((r) => setTimeout(r, 200));
      expect(renewals).toHaveLength(0);
      expect(identity.current()).toBe(first);

      writeFileSync(files.key, next.keyPem);
      const renewed = await nextRenewal(identity);
      expect(renewed.certPem).toBe(next.certPem);
      expect(identity.current().keyPem).toBe(next.keyPem);
    } finally {
      identity.stop();
    }
  });

  it('refuses to start without a CA', async () => {
    await expect(ServiceIdentity.fromDevCa({ caDir: join(dir, 'none'), name: 'auth' })).rejects.toThrow('no certificate authority');
  });
});

describe('spiffeIdOf', () => {
  it('reads the SPIFFE ID of a certificate or of a TLS peer', async () => {
    const { ca } = await ensureCa(dir);
    const issued = await issueCertificate(ca, { kind: 'service', name: 'llm-router' });
    const id = spiffeIdOf(new X509Certificate(issued.certPem));
    expect(id).toBe('spiffe://palisade.local/service/llm-router');
    expect(serviceOfSpiffeId(id)).toBe('llm-router');
    expect(spiffeIdOf({ subjectaltname: 'DNS:localhost, URI:spiffe://palisade.local/admin/platform' } as never)).toBe(
      'spiffe://palisade.local/admin/platform',
    );
  });

  it('accepts no foreign trust domain, no second ID and no certificate', async () => {
    expect(spiffeIdOf({ subjectaltname: 'URI:spiffe://evil.example/service/policy' } as never)).toBeUndefined();
    expect(
      spiffeIdOf({ subjectaltname: 'URI:spiffe://palisade.local/service/policy, URI:spiffe://palisade.local/service/auth' } as never),
    ).toBeUndefined();
    expect(spiffeIdOf({ subjectaltname: 'DNS:localhost' } as never)).toBeUndefined();
    expect(spiffeIdOf(undefined)).toBeUndefined();
    expect(serviceOfSpiffeId('spiffe://palisade.local/admin/platform')).toBeUndefined();
    expect(serviceOfSpiffeId('spiffe://palisade.local/service/mailer')).toBeUndefined();
  });
});
