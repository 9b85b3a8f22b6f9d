import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCa } from './ca';
import { writeFileAtomic } from './fs-util';
import { certificateProfile, expectedSubjectAltNames, issueCertificate, type IssueRequest } from './issue';
import { subjectAltNamesOf } from './spiffe';

export interface CertificateFiles {
  cert: string;
  key: string;
  ca: string;
}

export function certificateFiles(outDir: string): CertificateFiles {
  return { cert: join(outDir, 'cert.pem'), key: join(outDir, 'key.pem'), ca: join(outDir, 'ca.pem') };
}

export interface IssueToDirectoryResult {
  files: CertificateFiles;
  /** false when the certificate already there was kept. */
  issued: boolean;
  /** Why it was (re)issued, or why it was kept. */
  reason: string;
  notAfter: Date;
}

/**
 * Why the certificate in `files` cannot be kept for `req`, or undefined when it can:
 * it must exist with its key, be issued by the current CA, name what is asked for,
 * and have more than a third of its lifetime left.
 */
export function reasonToReissue(
  files: CertificateFiles,
  caPem: string,
  req: IssueRequest,
  now: Date = new Date(),
): string | undefined {
  if (![files.cert, files.key, files.ca].every((f) => existsSync(f))) return 'missing';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(files.cert));
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))) return 'key does not match certificate';
  } catch (error) {
    return `unreadable (${(error as Error).message})`;
  }
  const ca = new X509Certificate(caPem);
  if (readFileSync(files.ca, 'utf8') !== caPem) return 'CA changed';
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not issued by the current CA';
  const profile = certificateProfile(req);
  if (subjectAltNamesOf(cert).sort().join(',') !== expectedSubjectAltNames(profile).join(',')) return 'names changed';
  if ([...(cert.keyUsage ?? [])].sort().join(',') !== [...profile.extendedKeyUsages].sort().join(',')) {
    return 'key usage changed';
  }
  const notBefore = cert.validFromDate.getTime();
  const notAfter = cert.validToDate.getTime();
  if (notAfter - now.getTime() < (notAfter - notBefore) / 3) return 'expiring';
  return undefined;
}

/**
 * Idempotent issuance for scripts: writes `cert.pem`, `key.pem` (0600) and `ca.pem`
 * into `outDir` unless a certificate there can be kept (see `reasonToReissue`).
 * Creates the CA of `caDir` on first use.
 */
export async function issueToDirectory(caDir: string, req: IssueRequest, outDir: string): Promise<IssueToDirectoryResult> {
  const { ca } = await ensureCa(caDir);
  const files = certificateFiles(outDir);
  const reason = reasonToReissue(files, ca.certPem, req, req.now);
  if (reason === undefined) {
    return { files, issued: false, reason: 'valid', notAfter: new X509Certificate(readFileSync(files.cert)).validToDate };
  }
  const issued = await issueCertificate(ca, req);
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(files.key, issued.keyPem, 0o600);
  writeFileAtomic(files.cert, issued.certPem, 0o644);
  writeFileAtomic(files.ca, issued.caPem, 0o644);
  return { files, issued: true, reason, notAfter: issued.notAfter };
}
