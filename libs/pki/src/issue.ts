import { isIP } from 'node:net';
import { isServiceName, serviceSpiffeId, TRUST_DOMAIN } from '@palisade/contracts';
import type { CertificateAuthority } from './ca';
import { generateKeyPair, privateKeyToPem, randomSerial, SIGNING_ALGORITHM, x509, type X509PublicKey, type X509SigningKey } from './crypto';

/**
 * - `service`: a Palisade service, named by `spiffe://palisade.local/service/<name>`,
 *   usable as TLS server and client (mTLS between services).
 * - `server`: infrastructure (NATS, Kafka): DNS/IP names, TLS server and client.
 * - `admin`: an operator or script administering infrastructure,
 *   `spiffe://palisade.local/admin/<name>`, TLS client only.
 */
export const CERTIFICATE_KINDS = ['service', 'server', 'admin'] as const;
export type CertificateKind = (typeof CERTIFICATE_KINDS)[number];

export const DEFAULT_LEAF_LIFETIME_MS = 24 * 3600 * 1000;
/** notBefore lies this far in the past, for clocks that disagree a little. */
const BACKDATE_MS = 60_000;
const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export interface IssueRequest {
  kind: CertificateKind;
  /** Service name (kind service), host role (server: nats, kafka) or admin name. */
  name: string;
  /** Extra DNS names (service, server). */
  dns?: readonly string[];
  /** Extra IP addresses (service, server). */
  ips?: readonly string[];
  lifetimeMs?: number;
  now?: Date;
}

export interface IssuedCertificate {
  certPem: string;
  /** Unencrypted PKCS#8 PEM. */
  keyPem: string;
  caPem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** The URI SAN of service and admin certificates. */
  spiffeId?: string;
}

export function adminSpiffeId(name: string): string {
  return `spiffe://${TRUST_DOMAIN}/admin/${name}`;
}

interface Profile {
  subject: string;
  spiffeId?: string;
  dns: string[];
  ips: string[];
  extendedKeyUsages: string[];
}

const unique = (values: readonly string[]) => [...new Set(values)];

/** What a certificate of this request contains: subject, names and extended key usages. */
export function certificateProfile(req: Pick<IssueRequest, 'kind' | 'name' | 'dns' | 'ips'>): Profile {
  const { kind, name } = req;
  if (!(CERTIFICATE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`unknown certificate kind "${kind}" (one of ${CERTIFICATE_KINDS.join(', ')})`);
  }
  if (!NAME.test(name)) throw new Error(`invalid name "${name}": lowercase letters, digits and "-"`);
  for (const ip of req.ips ?? []) if (!isIP(ip)) throw new Error(`invalid IP address "${ip}"`);
  for (const dns of req.dns ?? []) {
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(dns)) throw new Error(`invalid DNS name "${dns}"`);
  }
  const both = [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  switch (kind) {
    case 'service':
      if (!isServiceName(name)) throw new Error(`"${name}" is not a Palisade service`);
      return {
        subject: `CN=${name}, OU=service, O=Palisade`,
        spiffeId: serviceSpiffeId(name),
        dns: unique(['localhost', ...(req.dns ?? [])]),
        ips: unique(['127.0.0.1', ...(req.ips ?? [])]),
        extendedKeyUsages: both,
      };
    case 'server':
      return {
        subject: `CN=${name}, OU=infrastructure, O=Palisade`,
        dns: unique(req.dns?.length ? req.dns : [name, 'localhost']),
        ips: unique(req.ips?.length ? req.ips : ['127.0.0.1']),
        extendedKeyUsages: both,
      };
    case 'admin':
      return {
        subject: `CN=${name}, OU=admin, O=Palisade`,
        spiffeId: adminSpiffeId(name),
        dns: [],
        ips: [],
        extendedKeyUsages: [x509.ExtendedKeyUsage.clientAuth],
      };
  }
}

/** The subjectAltName of a certificate of this profile, as node:crypto prints it, sorted. */
export function expectedSubjectAltNames(profile: Profile): string[] {
  return [
    ...(profile.spiffeId ? [`URI:${profile.spiffeId}`] : []),
    ...profile.dns.map((d) => `DNS:${d}`),
    ...profile.ips.map((ip) => `IP Address:${ip}`),
  ].sort();
}

/** Issue a leaf certificate and a fresh ECDSA P-256 key, signed by `ca`. */
export async function issueCertificate(ca: CertificateAuthority, req: IssueRequest): Promise<IssuedCertificate> {
  const profile = certificateProfile(req);
  const lifetimeMs = req.lifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS;
  if (!(lifetimeMs > 0)) throw new Error(`invalid lifetime ${lifetimeMs} ms`);
  const now = req.now ?? new Date();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  // X.509 times have whole seconds: round up, so the certificate lives at least lifetimeMs.
  const notAfter = new Date(Math.ceil((now.getTime() + lifetimeMs) / 1000) * 1000);
  if (notAfter > ca.cert.notAfter) throw new Error('the certificate would outlive its CA');
  const keys = await generateKeyPair();
  const publicKey = keys.publicKey as unknown as X509PublicKey;
  const serialNumber = randomSerial();
  const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [
    ...(profile.spiffeId ? [{ type: 'url' as const, value: profile.spiffeId }] : []),
    ...profile.dns.map((value) => ({ type: 'dns' as const, value })),
    ...profile.ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: profile.subject,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey,
    signingKey: ca.signingKey as unknown as X509SigningKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(profile.extendedKeyUsages, false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  const issued: IssuedCertificate = {
    certPem: cert.toString('pem') + '\n',
    keyPem: await privateKeyToPem(keys.privateKey),
    caPem: ca.certPem,
    serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
  if (profile.spiffeId) issued.spiffeId = profile.spiffeId;
  return issued;
}
