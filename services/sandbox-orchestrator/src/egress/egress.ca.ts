import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { Worker } from 'node:worker_threads';
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

  /**
   * A new CA; `label` names it in its subject (the network it was prepared for: made
   * ahead, before its sandbox is known). Made on a worker thread when the service runs
   * built (the certificate's generation is ~10–20 ms of CPU that the event loop would
   * otherwise spend while other sandboxes start); the private key is cloned back as a
   * non-extractable CryptoKey, never serialised.
   */
  static async create(label: string): Promise<SandboxCa> {
    const { keys, der } = await caWorker.make(label);
    return new SandboxCa(keys, new x509.X509Certificate(der));
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

/** A CA's key pair (private key non-extractable) and its self-signed certificate (DER). */
export interface CaParts {
  keys: KeyPair;
  der: ArrayBuffer;
}

/** Makes a CA's key pair and certificate (on whichever thread calls it). */
export async function makeCaParts(label: string): Promise<CaParts> {
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
  return { keys, der: cert.rawData };
}

/**
 * One worker thread per process making CAs (`egress.ca.worker.js` beside this file, when
 * built; run from sources, as under Jest, the CAs are made on the calling thread). It keeps
 * the process alive only while a CA is being made; a worker that dies fails its pending
 * requests and is started again by the next.
 */
class CaWorker {
  private worker: Worker | undefined;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (parts: CaParts) => void; reject: (error: Error) => void }>();
  private readonly script = join(__dirname, 'egress.ca.worker.js');

  make(label: string): Promise<CaParts> {
    if (!existsSync(this.script)) return makeCaParts(label);
    const worker = this.start();
    worker.ref();
    const id = this.next++;
    return new Promise<CaParts>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, label });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script);
    worker.unref();
    worker.on('message', (m: { id: number; parts?: CaParts; error?: string }) => {
      const request = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.parts) request?.resolve(m.parts);
      else request?.reject(new Error(`the CA could not be made: ${m.error ?? 'unknown'}`));
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const request of this.pending.values()) request.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the CA worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}

const caWorker = new CaWorker();
