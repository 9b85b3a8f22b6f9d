import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { isServiceName, TRUST_DOMAIN, type ServiceName } from '@palisade/contracts';

/**
 * The entries of a certificate's subjectAltName as node prints them
 * (`DNS:localhost`, `IP Address:127.0.0.1`, `URI:spiffe://...`). Node quotes a value
 * holding a separator as a JSON string; such values are unquoted here.
 */
export function subjectAltNamesOf(cert: { subjectAltName?: string | undefined } | { subjectaltname?: string }): string[] {
  const text = 'subjectAltName' in cert ? cert.subjectAltName : (cert as { subjectaltname?: string }).subjectaltname;
  if (!text) return [];
  const entries: string[] = [];
  const pattern = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = pattern.exec(text); m !== null && m[0] !== ''; m = pattern.exec(text)) {
    const value = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
    entries.push(`${m[1]}:${value}`);
  }
  return entries;
}

/**
 * The SPIFFE ID (URI SAN `spiffe://palisade.local/...`) of a peer certificate, e.g.
 * `tlsSocket.getPeerCertificate()` on an mTLS connection, or undefined when it has
 * none of our trust domain (or more than one, which SPIFFE forbids).
 */
export function spiffeIdOf(peer: PeerCertificate | X509Certificate | undefined | null): string | undefined {
  if (!peer) return undefined;
  const ids = subjectAltNamesOf(peer)
    .filter((e) => e.startsWith('URI:spiffe://'))
    .map((e) => e.slice('URI:'.length));
  if (ids.length !== 1) return undefined;
  return ids[0].startsWith(`spiffe://${TRUST_DOMAIN}/`) ? ids[0] : undefined;
}

/** The service a SPIFFE ID names (`spiffe://palisade.local/service/<name>`), if any. */
export function serviceOfSpiffeId(id: string | undefined): ServiceName | undefined {
  const prefix = `spiffe://${TRUST_DOMAIN}/service/`;
  if (!id?.startsWith(prefix)) return undefined;
  const name = id.slice(prefix.length);
  return isServiceName(name) ? name : undefined;
}
