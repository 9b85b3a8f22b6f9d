import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { PalisadeError, serviceOfReplySubject, type ServiceName } from '@palisade/contracts';
import { serviceOfSpiffeId, spiffeIdOf, type IdentityMaterial } from '@palisade/pki';

/*
 * Proof of who sent a NATS request (issue 10). NATS tells a responder nothing about the
 * sender; the reply subject (`_INBOX.<service>.…`) says only where the answer goes, and
 * any service may publish a request naming another's inbox. A request whose side effect
 * matters (redeeming an approval) is therefore signed by its sender: header
 * `Palisade-Caller` holds a compact JWS (the key of the service's certificate, the
 * certificate chain in `x5c`) over claims binding it to exactly this message.
 */
export const CALLER_HEADER = 'Palisade-Caller';
const TYP = 'palisade-caller+jwt';
/** A signature is good this long after it was made. */
export const CALLER_PROOF_LIFETIME_S = 30;
/** Clocks of two hosts may disagree this much. */
const CLOCK_TOLERANCE_S = 5;
const MAX_CHAIN = 4;

/** What signs: the service's identity (libs/pki ServiceIdentity), read at each signature so a renewed certificate is used. */
export interface RpcSigner {
  current(): Pick<IdentityMaterial, 'certPem' | 'keyPem'>;
}

/** What verifies: the platform CA bundle the service already trusts (libs/pki ServiceIdentity). */
export interface RpcCallerTrust {
  current(): Pick<IdentityMaterial, 'caPem'>;
}

/** The claims of a `Palisade-Caller` signature. */
interface CallerClaims {
  /** The wire subject the request is published on (namespace included). */
  nats_subject: string;
  /** The reply subject: the inbox of the service that signs. */
  nats_reply: string;
  /** base64url SHA-256 of the payload bytes. */
  payload_sha256: string;
}

const digestOf = (data: Uint8Array) => createHash('sha256').update(data).digest('base64url');
const refused = (why: string) => new PalisadeError('forbidden', `${CALLER_HEADER}: ${why}`);

interface SigningKey {
  keyPem: string;
  certPem: string;
  key: KeyObject;
  alg: 'ES256' | 'EdDSA';
  x5c: string[];
}
const signingKeys = new WeakMap<RpcSigner, SigningKey>();

/** The signer's key and certificate chain, parsed once per certificate (renewals replace it). */
function signingKeyOf(signer: RpcSigner): SigningKey {
  const { certPem, keyPem } = signer.current();
  const cached = signingKeys.get(signer);
  if (cached?.keyPem === keyPem && cached.certPem === certPem) return cached;
  const key = createPrivateKey(keyPem);
  const alg = algorithmOf(key);
  const x5c = pemBlocks(certPem).map((pem) => new X509Certificate(pem).raw.toString('base64'));
  const entry: SigningKey = { keyPem, certPem, key, alg, x5c };
  signingKeys.set(signer, entry);
  return entry;
}

function algorithmOf(key: KeyObject): 'ES256' | 'EdDSA' {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`${CALLER_HEADER}: a ${key.asymmetricKeyType ?? 'unknown'} key cannot sign (ECDSA P-256 or Ed25519)`);
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The `Palisade-Caller` value for a request of `data` on `wireSubject`, answered to `reply`, signed as `signer`. */
export async function signCaller(signer: RpcSigner, wireSubject: string, reply: string, data: Uint8Array, now: Date = new Date()): Promise<string> {
  const { key, alg, x5c } = signingKeyOf(signer);
  const claims: CallerClaims = { nats_subject: wireSubject, nats_reply: reply, payload_sha256: digestOf(data) };
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg, typ: TYP, x5c })
    .setIssuedAt(iat)
    .setExpirationTime(iat + CALLER_PROOF_LIFETIME_S)
    .sign(key);
}

/** The message a signature must be about. */
export interface SignedMessage {
  subject: string;
  reply: string;
  data: Uint8Array;
}

let trustCache: { caPem: string; roots: X509Certificate[] } | undefined;

function rootsOf(caPem: string): X509Certificate[] {
  if (trustCache?.caPem !== caPem) trustCache = { caPem, roots: pemBlocks(caPem).map((pem) => new X509Certificate(pem)) };
  return trustCache.roots;
}

const validAt = (cert: X509Certificate, now: Date) => cert.validFromDate.getTime() <= now.getTime() && now.getTime() <= cert.validToDate.getTime();
const issuedBy = (cert: X509Certificate, issuer: X509Certificate) => issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);

/**
 * The service that signed `message`, proven: the `x5c` chain leads to the platform CA
 * (`caPem`), its leaf names a Palisade service (SPIFFE URI SAN), the JWS verifies with
 * that certificate's key, and its claims are about this very message (wire subject,
 * reply subject, payload digest) and recent, and the reply goes to the signer's own
 * inbox. Anything else is a `forbidden` naming the
 * problem.
 */
export async function verifyCaller(jws: string, message: SignedMessage, caPem: string, now: Date = new Date()): Promise<ServiceName> {
  const leaf = trustedLeaf(x5cOf(jws), rootsOf(caPem), now);
  const service = serviceOfSpiffeId(spiffeIdOf(leaf));
  if (!service) throw refused('the certificate names no Palisade service');
  let claims: Partial<CallerClaims> & { iat?: number; exp?: number };
  try {
    ({ payload: claims } = await jwtVerify<CallerClaims>(jws, leaf.publicKey, {
      algorithms: ['ES256', 'EdDSA'],
      typ: TYP,
      currentDate: now,
      clockTolerance: CLOCK_TOLERANCE_S,
      maxTokenAge: CALLER_PROOF_LIFETIME_S + CLOCK_TOLERANCE_S,
      requiredClaims: ['iat', 'exp'],
    }));
  } catch (error) {
    throw refused(`the signature is not valid (${(error as Error).message})`);
  }
  if (claims.exp! - claims.iat! > CALLER_PROOF_LIFETIME_S) throw refused(`the signature is valid for more than ${CALLER_PROOF_LIFETIME_S} s`);
  if (claims.iat! > now.getTime() / 1000 + CLOCK_TOLERANCE_S) throw refused('the signature is from the future');
  if (claims.nats_subject !== message.subject) throw refused('signed for another subject');
  if (claims.nats_reply !== message.reply) throw refused('signed for another reply subject');
  if (claims.payload_sha256 !== digestOf(message.data)) throw refused('signed for another payload');
  // a service signs only requests answered to its own inbox: the answer goes to who asked
  const inbox = serviceOfReplySubject(message.reply);
  if (service !== inbox) throw refused(`signed by ${service}, but the reply goes to ${inbox ? `the inbox of ${inbox}` : 'no service inbox'}`);
  return service;
}

function x5cOf(jws: string): X509Certificate[] {
  let x5c: unknown;
  try {
    const [protectedHeader] = jws.split('.', 1);
    x5c = (JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as { x5c?: unknown }).x5c;
  } catch {
    throw refused('not a compact JWS');
  }
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_CHAIN || !x5c.every((c) => typeof c === 'string')) {
    throw refused(`x5c must hold the signer's certificate chain (1 to ${MAX_CHAIN} certificates)`);
  }
  try {
    return (x5c as string[]).map((der) => new X509Certificate(Buffer.from(der, 'base64')));
  } catch {
    throw refused('x5c holds a certificate that cannot be read');
  }
}

/** The leaf of `chain`, once each certificate is shown issued by the next and the last by one of `roots`, all valid now. */
function trustedLeaf(chain: X509Certificate[], roots: readonly X509Certificate[], now: Date): X509Certificate {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i], chain[i + 1])) throw refused('the x5c chain is broken');
  }
  const top = chain[chain.length - 1];
  const root = roots.find((r) => issuedBy(top, r));
  if (!root) throw refused('the certificate is not issued by the platform CA');
  if (![...chain, root].every((c) => validAt(c, now))) throw refused('a certificate of the chain is expired or not yet valid');
  return chain[0];
}
