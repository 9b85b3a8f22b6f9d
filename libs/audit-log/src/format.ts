import { createPrivateKey, createPublicKey, hash as digest, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalRecordBody, fastCanonicalJson } from './jcs';

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
  // One-shot crypto.hash: a third of createHash's cost for short inputs (no Hash object).
  return digest('sha256', canonicalRecordBody(record), 'hex');
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
  const eventJson = canonicalJson(event);
  const rest = `"partition":${head.partition},"prev":${JSON.stringify(head.hash)},"recordedAt":${JSON.stringify(recordedAt)},"seq":${seq},"v":${FORMAT_VERSION}}`;
  const hash = digest('sha256', `{"event":${eventJson},${rest}`, 'hex');
  const record: AuditRecord = { v: FORMAT_VERSION, partition: head.partition, seq, prev: head.hash, recordedAt, event, hash };
  return { record, value: `{"event":${eventJson},"hash":"${hash}",${rest}`, head: { partition: head.partition, seq, hash } };
}

// ------------------------------------------------------------------ checkpoints

/** Public signing key as published at GET /v1/audit/keys. */
export interface Ed25519Jwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  use: 'sig';
}

export interface Jwks {
  keys: Ed25519Jwk[];
}

export function publicJwk(publicKey: KeyObject, kid: string): Ed25519Jwk {
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error('not an Ed25519 public key');
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, use: 'sig' };
}

export function signCheckpoint(checkpoint: UnsignedCheckpoint, privateKey: KeyObject): Checkpoint {
  const sig = sign(null, Buffer.from(canonicalJson(checkpoint), 'utf8'), privateKey).toString('base64url');
  return { ...checkpoint, sig };
}

/** Public keys by kid, from a JWKS (keys that are not Ed25519 signing keys are ignored). */
export function keysOf(jwks: Jwks): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const jwk of jwks.keys ?? []) {
    if (jwk?.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.kid !== 'string' || typeof jwk.x !== 'string') continue;
    keys.set(jwk.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }));
  }
  return keys;
}

/** true when `sig` is a valid Ed25519 signature by `publicKey` over the checkpoint without `sig`. */
export function checkpointSignatureValid(checkpoint: Checkpoint, publicKey: KeyObject): boolean {
  const { sig, ...unsigned } = checkpoint;
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]+$/.test(sig)) return false;
  try {
    return verify(null, Buffer.from(canonicalJson(unsigned), 'utf8'), publicKey, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}

/** An Ed25519 private key from PKCS#8 DER (as the audit service stores it, encrypted). */
export function privateKeyFromPkcs8(der: Buffer): KeyObject {
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}
