import { createPrivateKey, createPublicKey, generateKeyPairSync, hash as digest, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalRecordBody, fastCanonicalJson, hasLoneSurrogate, withWellFormedStrings } from './jcs';

/**
 * The audit log format, version 1 (shared/design/audit-log-format.md), as code. This
 * module is the one place that knows how a record and a checkpoint are built, hashed
 * and signed; the audit service writes with it and every verifier reads with it.
 */
export const FORMAT_VERSION = 1;
export const DEFAULT_AUDIT_TOPIC = 'palisade.audit.v1';
export const DEFAULT_CHECKPOINT_TOPIC = 'palisade.audit.checkpoints.v1';
/** `prev` of the first record of a partition. */
export const ZERO_HASH = '0'.repeat(64);
/** A checkpoint is due after this many records of a partition ... */
export const CHECKPOINT_EVERY_RECORDS = 1000;
/** ... or this long after the first record it does not cover yet. */
export const CHECKPOINT_EVERY_MS = 10_000;

/** The platform event as consumed (at least the envelope's members). */
export interface RecordedEvent {
  id: string;
  type: string;
  source: string;
  tenantId: string;
  actor: { type: string; id: string };
  occurredAt: string;
  data: Record<string, unknown>;
  personal?: unknown;
  [member: string]: unknown;
}

export interface AuditRecord {
  v: 1;
  partition: number;
  seq: number;
  prev: string;
  recordedAt: string;
  event: RecordedEvent;
  hash: string;
}

export type UnsealedRecord = Omit<AuditRecord, 'hash'>;

export interface Checkpoint {
  v: 1;
  partition: number;
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  sig: string;
}

export type UnsignedCheckpoint = Omit<Checkpoint, 'sig'>;

/**
 * RFC 8785 (JCS) canonical JSON: byte-identical to the `canonicalize` library (which it
 * falls back to for anything but plain JSON values), only faster (jcs.ts).
 */
export function canonicalJson(value: unknown): string {
  return fastCanonicalJson(value);
}

/** Lowercase hex SHA-256 of the JCS form of the record without `hash`. */
export function recordHash(record: UnsealedRecord | AuditRecord): string {
  return hashOfCanonical(canonicalRecordBody(record));
}

/** SHA-256 (lowercase hex) of a canonical form. */
export function hashOfCanonical(canonical: string): string {
  // One-shot crypto.hash: a third of createHash's cost for short inputs (no Hash object).
  return digest('sha256', canonical, 'hex');
}

/** A record with its hash. */
export function sealRecord(record: UnsealedRecord): AuditRecord {
  return { ...record, hash: recordHash(record) };
}

/** The state a chain writer needs to append the next record of a partition. */
export interface ChainHead {
  partition: number;
  seq: number;
  hash: string;
}

export const emptyHead = (partition: number): ChainHead => ({ partition, seq: 0, hash: ZERO_HASH });

/**
 * Append `event` after `head`: the sealed record, its bytes for the topic (the record's
 * canonical JSON: any JSON would do, this one is stable) and the new head. Pure. The event is
 * serialized once, for the hash and the value: members in JCS order are event, hash,
 * partition, prev, recordedAt, seq, v, and every member but the event is a string or a
 * safe integer, whose JCS form is JSON.stringify's.
 */
export function appendToChain(head: ChainHead, event: RecordedEvent, recordedAt: string): { record: AuditRecord; value: string; head: ChainHead } {
  const seq = head.seq + 1;
  let eventJson = canonicalJson(event);
  if (hasLoneSurrogate(eventJson)) {
    // I-JSON has no lone surrogates: chained with U+FFFD in their place, as other JCS
    // implementations read them, so that any verifier computes the same hash.
    event = withWellFormedStrings(event) as RecordedEvent;
    eventJson = canonicalJson(event);
  }
  const rest = `"partition":${head.partition},"prev":${JSON.stringify(head.hash)},"recordedAt":${JSON.stringify(recordedAt)},"seq":${seq},"v":${FORMAT_VERSION}}`;
  const hash = digest('sha256', `{"event":${eventJson},${rest}`, 'hex');
  const record: AuditRecord = { v: FORMAT_VERSION, partition: head.partition, seq, prev: head.hash, recordedAt, event, hash };
  return { record, value: `{"event":${eventJson},"hash":"${hash}",${rest}`, head: { partition: head.partition, seq, hash } };
}

// ------------------------------------------------------------------ checkpoints

/**
 * How checkpoints are signed, per deployment (services/audit/docs/audit-log-format-addendum-sm2.md):
 * - `ed25519`: version 1 as published, kid without prefix, JWK `{"kty":"OKP","crv":"Ed25519"}`.
 * - `sm2`: SM2 (GB/T 32918.2) with the SM3 digest, kid `sm2:<thumbprint>`, JWK
 *   `{"kty":"EC","crv":"SM2","x","y"}`; the signature is DER `SEQUENCE { r, s }` (GM/T 0009),
 *   base64url. The user id in Z_A is the empty string (ENTL = 0): Node cannot set the
 *   distinguishing id, and OpenSSL's default for an unset id is empty.
 * The kid's prefix says which algorithm applies; a key is used only for the algorithm its
 * kid names, so a checkpoint cannot pick another algorithm for a published key.
 */
export const CHECKPOINT_ALGORITHMS = ['ed25519', 'sm2'] as const;
export type CheckpointAlgorithm = (typeof CHECKPOINT_ALGORITHMS)[number];
export const SM2_KEY_ID_PREFIX = 'sm2:';

/** The algorithm a checkpoint's `keyId` names. */
export function algorithmOfKeyId(keyId: string): CheckpointAlgorithm {
  return keyId.startsWith(SM2_KEY_ID_PREFIX) ? 'sm2' : 'ed25519';
}

/** Public signing key as published at GET /v1/audit/keys. */
export interface Ed25519Jwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  use: 'sig';
}

/** An SM2 public key: x and y are the affine coordinates, 32 bytes each, base64url (no padding). */
export interface Sm2Jwk {
  kty: 'EC';
  crv: 'SM2';
  x: string;
  y: string;
  kid: string;
  use: 'sig';
}

export type CheckpointJwk = Ed25519Jwk | Sm2Jwk;

export interface Jwks {
  keys: CheckpointJwk[];
}

/** SubjectPublicKeyInfo of an SM2 point up to the point: id-ecPublicKey, curve 1.2.156.10197.1.301, BIT STRING, 04. */
const SM2_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a811ccf5501822d03420004', 'hex');
const SM2_CURVE_OID = Buffer.from('06082a811ccf5501822d', 'hex');

function isSm2Key(key: KeyObject): boolean {
  if (key.asymmetricKeyType === 'ed25519') return false;
  const der = key.type === 'private' ? key.export({ format: 'der', type: 'pkcs8' }) : key.export({ format: 'der', type: 'spki' });
  return der.includes(SM2_CURVE_OID);
}

/**
 * The key as OpenSSL's SM2 type. `generateKeyPairSync('ec', { namedCurve: 'SM2' })` gives an
 * EC key, with which sign('sm3') computes ECDSA over the SM2 curve, not SM2; the same key
 * read back from PKCS#8 / SPKI is an SM2 key and signs with SM2 (Z_A, then the SM2 equations).
 */
export function sm2Key(key: KeyObject): KeyObject {
  if (!isSm2Key(key)) throw new Error('not an SM2 key');
  return key.type === 'private'
    ? createPrivateKey({ key: key.export({ format: 'der', type: 'pkcs8' }), format: 'der', type: 'pkcs8' })
    : createPublicKey({ key: key.export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' });
}

/** A new checkpoint signing key pair of the algorithm (SM2: already OpenSSL's SM2 type). */
export function generateCheckpointKeyPair(algorithm: CheckpointAlgorithm): { publicKey: KeyObject; privateKey: KeyObject } {
  if (algorithm === 'ed25519') return generateKeyPairSync('ed25519');
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'SM2' });
  return { publicKey: sm2Key(publicKey), privateKey: sm2Key(privateKey) };
}

export function publicJwk(publicKey: KeyObject, kid: string): CheckpointJwk {
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
    return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, use: 'sig' };
  }
  if (!isSm2Key(publicKey)) throw new Error('not an Ed25519 or SM2 public key');
  // Node cannot export an SM2 key as a JWK (ERR_CRYPTO_JWK_UNSUPPORTED_CURVE): the point is the SPKI's last 64 bytes.
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const point = spki.subarray(spki.length - 64);
  return { kty: 'EC', crv: 'SM2', x: point.subarray(0, 32).toString('base64url'), y: point.subarray(32).toString('base64url'), kid, use: 'sig' };
}

/**
 * The kid of a public key: an RFC 7638-style SHA-256 thumbprint (22 base64url characters)
 * of its required members, prefixed `sm2:` for SM2 keys.
 */
export function checkpointKeyId(jwk: Omit<Ed25519Jwk, 'kid' | 'use'> | Omit<Sm2Jwk, 'kid' | 'use'>): string {
  const members = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  const thumbprint = digest('sha256', JSON.stringify(members), 'base64url').slice(0, 22);
  return jwk.kty === 'OKP' ? thumbprint : `${SM2_KEY_ID_PREFIX}${thumbprint}`;
}

export function signCheckpoint(checkpoint: UnsignedCheckpoint, privateKey: KeyObject): Checkpoint {
  const data = Buffer.from(canonicalJson(checkpoint), 'utf8');
  const sig = algorithmOfKeyId(checkpoint.keyId) === 'sm2' ? sign('sm3', data, sm2Key(privateKey)) : sign(null, data, privateKey);
  return { ...checkpoint, sig: sig.toString('base64url') };
}

/**
 * Public keys by kid, from a JWKS: Ed25519 keys under kids without prefix, SM2 keys under
 * `sm2:` kids; any other key, or a key whose kid names another algorithm, is ignored.
 */
export function keysOf(jwks: Jwks): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const jwk of jwks.keys ?? []) {
    if (typeof jwk?.kid !== 'string' || typeof jwk.x !== 'string') continue;
    const algorithm = algorithmOfKeyId(jwk.kid);
    try {
      if (algorithm === 'ed25519' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
        keys.set(jwk.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }));
      } else if (algorithm === 'sm2' && jwk.kty === 'EC' && jwk.crv === 'SM2' && typeof jwk.y === 'string') {
        const x = Buffer.from(jwk.x, 'base64url');
        const y = Buffer.from(jwk.y, 'base64url');
        if (x.length !== 32 || y.length !== 32) continue;
        // Import checks the point is on the curve.
        keys.set(jwk.kid, createPublicKey({ key: Buffer.concat([SM2_SPKI_PREFIX, x, y]), format: 'der', type: 'spki' }));
      }
    } catch {
      // not a valid key: not published as far as a verifier is concerned
    }
  }
  return keys;
}

/**
 * true when `sig` is a valid signature by `publicKey` over the checkpoint without `sig`,
 * with the algorithm its `keyId` names (Ed25519, or SM2 with SM3 and the empty user id).
 */
export function checkpointSignatureValid(checkpoint: Checkpoint, publicKey: KeyObject): boolean {
  const { sig, ...unsigned } = checkpoint;
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]+$/.test(sig) || typeof unsigned.keyId !== 'string') return false;
  try {
    const data = Buffer.from(canonicalJson(unsigned), 'utf8');
    if (algorithmOfKeyId(unsigned.keyId) === 'sm2') return isSm2Key(publicKey) && verify('sm3', data, sm2Key(publicKey), Buffer.from(sig, 'base64url'));
    return publicKey.asymmetricKeyType === 'ed25519' && verify(null, data, publicKey, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}

/** A checkpoint private key (Ed25519 or SM2) from PKCS#8 DER (as the audit service stores it, encrypted). */
export function privateKeyFromPkcs8(der: Buffer): KeyObject {
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}
