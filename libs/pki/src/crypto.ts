import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 signs through WebCrypto; Node's implementation is the provider.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type KeyPair = webcrypto.CryptoKeyPair;
export type Key = webcrypto.CryptoKey;
/** The same keys, as @peculiar/x509's (DOM-typed) signatures name them. */
export type X509SigningKey = Extract<Parameters<typeof x509.X509CertificateGenerator.create>[0], { signingKey: unknown }>['signingKey'];
export type X509PublicKey = Parameters<typeof x509.SubjectKeyIdentifierExtension.create>[0];
export type X509KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

/** ECDSA P-256 with SHA-256: accepted by Go (nats-server), Java (Kafka) and Node alike. */
export const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateKeyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as KeyPair;
}

/** Unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
export async function privateKeyToPem(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

export async function importSigningKey(pem: string): Promise<Key> {
  const der = x509.PemConverter.decodeFirst(pem);
  return webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
}

/** A positive, random 128-bit serial number in hex (RFC 5280 allows up to 20 octets). */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
