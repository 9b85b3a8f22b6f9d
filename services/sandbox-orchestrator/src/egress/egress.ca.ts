import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
type KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type SigningKey = Extract<Parameters<typeof x509.X509CertificateGenerator.create>[0], { signingKey: unknown }>['signingKey'];
type PublicKey = Parameters<typeof x509.SubjectKeyIdentifierExtension.create>[0];
const DAY_MS = 86_400_000;
/** Leaves per sandbox kept (a program touching many hosts mints again past this). */
const LEAF_CACHE = 256;

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/**
 * A sandbox's own CA: ECDSA P-256, made at sandbox start, held in memory only (its private
 * key is not extractable: it cannot be written anywhere), gone with the sandbox. Only its
 * certificate enters the sandbox (its trust bundle). Leaves are minted per host on first
 * use and cached.
 */
export class SandboxCa {
  private readonly leaves = new Map<string, Promise<SecureContext>>();

  private constructor(
    private readonly keys: KeyPair,
    private readonly cert: x509.X509Certificate,
  ) {}

  /** `label` names the CA in its subject (the network it was prepared for: made ahead, before its sandbox is known). */
  static async create(label: string): Promise<SandboxCa> {
    const keys = (await webcrypto.subtle.generateKey(EC_KEY, false, ['sign', 'verify'])) as unknown as KeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=Palisade sandbox ${label} egress CA`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 30 * DAY_MS),
      keys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as PublicKey),
      ],
    });
    return new SandboxCa(keys, cert);
  }

  get certificatePem(): string {
    return `${this.cert.toString('pem')}\n`;
  }

  /** The TLS context presenting a leaf for `host` (a DNS name or an IP), minted once. */
  contextFor(host: string): Promise<SecureContext> {
    let leaf = this.leaves.get(host);
    if (!leaf) {
      if (this.leaves.size >= LEAF_CACHE) this.leaves.delete(this.leaves.keys().next().value!);
      leaf = this.mint(host);
      leaf.catch(() => this.leaves.delete(host));
      this.leaves.set(host, leaf);
    }
    return leaf;
  }

  private async mint(host: string): Promise<SecureContext> {
    const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as unknown as KeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host}`,
      issuer: this.cert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + DAY_MS),
      publicKey: keys.publicKey as PublicKey,
      signingKey: this.keys.privateKey as SigningKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([isIP(host) ? { type: 'ip', value: host } : { type: 'dns', value: host }], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey as PublicKey),
      ],
    });
    const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey);
    const key = x509.PemConverter.encode(der, 'PRIVATE KEY');
    return createSecureContext({ key, cert: `${cert.toString('pem')}\n${this.certificatePem}`, minVersion: 'TLSv1.2' });
  }
}
