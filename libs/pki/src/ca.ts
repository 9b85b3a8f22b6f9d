import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, importSigningKey, privateKeyToPem, randomSerial, SIGNING_ALGORITHM, x509, type Key, type X509KeyPair, type X509PublicKey } from './crypto';
import { withDirLock, writeFileAtomic } from './fs-util';

export const CA_COMMON_NAME = 'Palisade Development Root CA';
export const CA_SUBJECT = `CN=${CA_COMMON_NAME}, O=Palisade`;
/** Ten years. */
export const CA_LIFETIME_MS = 3652 * 24 * 3600 * 1000;

/** A loaded certificate authority: its certificate and the key that signs with it. */
export interface CertificateAuthority {
  dir: string;
  certPem: string;
  cert: x509.X509Certificate;
  signingKey: Key;
}

export function caFiles(dir: string): { cert: string; key: string } {
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

/** Load the CA of `dir` (`ca.crt`, `ca.key`); fails when it was never created. */
export async function loadCa(dir: string): Promise<CertificateAuthority> {
  const files = caFiles(dir);
  if (!existsSync(files.cert) || !existsSync(files.key)) {
    throw new Error(`no certificate authority in ${dir} (run: pki.js ensure-ca --dir ${dir})`);
  }
  const certPem = readFileSync(files.cert, 'utf8');
  return {
    dir,
    certPem,
    cert: new x509.X509Certificate(certPem),
    signingKey: await importSigningKey(readFileSync(files.key, 'utf8')),
  };
}

/**
 * The development root CA of `dir`: created once (self-signed, ECDSA P-256, ten years,
 * key file mode 0600), reused by every later call and by every process that shares the
 * directory. Concurrent first calls create it once.
 */
export async function ensureCa(dir: string, now: Date = new Date()): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const files = caFiles(dir);
  if (existsSync(files.cert) && existsSync(files.key)) return { ca: await loadCa(dir), created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return withDirLock(join(dir, '.ca.lock'), async () => {
    if (existsSync(files.cert) && existsSync(files.key)) return { ca: await loadCa(dir), created: false };
    const keys = await generateKeyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: CA_SUBJECT,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      keys: keys as unknown as X509KeyPair,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as X509PublicKey),
      ],
    });
    // The key first: a present ca.crt means a complete CA to every reader.
    writeFileAtomic(files.key, await privateKeyToPem(keys.privateKey), 0o600);
    writeFileAtomic(files.cert, cert.toString('pem') + '\n', 0o644);
    return { ca: await loadCa(dir), created: true };
  });
}
