import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { CipherSuite, DhkemX25519HkdfSha256, ExportOnly, HkdfSha256 } from '@hpke/core';
import {
  TRANSPORT_SEALING_ALG,
  TRANSPORT_SEALING_EXPORTER_CONTEXT,
  TRANSPORT_SEALING_INFO,
  transportSealingAad,
  type Personal,
  type TransportSealedEventBinding,
  type TransportSealedPersonal,
} from '@palisade/contracts';

/**
 * The one cipher suite of transport sealing (contracts `transportSealedPersonalSchema`):
 * RFC 9180 HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, export-only AEAD.
 * HPKE itself is @hpke/core's (WebCrypto X25519, which refuses an all-zero shared
 * secret); nothing here composes ECDH and HKDF by hand. What is ours: the exported key
 * seals many members with AES-256-GCM (node:crypto), so one HPKE setup (an X25519 key
 * generation and one DH) serves a whole epoch of members instead of one per member.
 */
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new ExportOnly() });
const INFO = new TextEncoder().encode(TRANSPORT_SEALING_INFO);
const EXPORTER_CONTEXT = new TextEncoder().encode(TRANSPORT_SEALING_EXPORTER_CONTEXT);
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const arrayBufferOf = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** A new X25519 transport key pair, both halves raw (32 bytes each; the private one is the caller's to wrap and never log). */
export async function generateTransportKeyPair(): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
  const pair = await suite.kem.generateKeyPair();
  return {
    publicKey: Buffer.from(await suite.kem.serializePublicKey(pair.publicKey)),
    privateKey: Buffer.from(await suite.kem.serializePrivateKey(pair.privateKey)),
  };
}

/** The id of a transport key: its RFC 7638 JWK thumbprint (SHA-256, base64url), so the id names the key itself. */
export function transportKeyId(publicKey: Buffer): string {
  const jwk = `{"crv":"X25519","kty":"OKP","x":"${publicKey.toString('base64url')}"}`;
  return createHash('sha256').update(jwk, 'utf8').digest('base64url');
}

/**
 * A producer's sealing epoch: one HPKE sender context to the audit key `kid`, and the
 * 32-byte AES-256-GCM key it exports. Every member sealed in the epoch names the same
 * `enc`, so the audit service decapsulates once per epoch. Random 96-bit nonces: an
 * epoch must stay far below 2^32 members (TransportPersonalSealer rolls it much sooner).
 * Its key is never serialized (`toJSON`).
 */
export class TransportSealingEpoch {
  private count = 0;

  private constructor(
    readonly kid: string,
    readonly enc: string,
    private readonly key: Buffer,
    readonly startedAt: number,
  ) {}

  /** Set up an HPKE sender context to `publicKey` (the audit key `kid`) and export the epoch's key. */
  static async start(kid: string, publicKey: Buffer, startedAt: number): Promise<TransportSealingEpoch> {
    const recipientPublicKey = await suite.kem.deserializePublicKey(arrayBufferOf(publicKey));
    const sender = await suite.createSenderContext({ recipientPublicKey, info: arrayBufferOf(INFO) });
    const key = Buffer.from(await sender.export(arrayBufferOf(EXPORTER_CONTEXT), KEY_BYTES));
    return new TransportSealingEpoch(kid, Buffer.from(sender.enc).toString('base64url'), key, startedAt);
  }

  /** Members sealed in this epoch. */
  get sealed(): number {
    return this.count;
  }

  /**
   * Seal `personal` for the event `event` (its id, tenant, source and type): it opens only
   * there, for the same subject.
   */
  seal(event: TransportSealedEventBinding, personal: Personal): TransportSealedPersonal {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(transportSealingAad(event, personal.subjectId, this.kid, this.enc));
    const ct = Buffer.concat([cipher.update(JSON.stringify(personal.data), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    this.count++;
    return { subjectId: personal.subjectId, alg: TRANSPORT_SEALING_ALG, kid: this.kid, enc: this.enc, nonce: nonce.toString('base64url'), ct: ct.toString('base64url') };
  }

  toJSON(): object {
    return { kid: this.kid, enc: this.enc, startedAt: this.startedAt, sealed: this.count };
  }
}

/**
 * The audit side of an epoch: decapsulate `enc` with the transport private key (raw, 32
 * bytes) and export the epoch's AES-256-GCM key. Throws on a malformed `enc`. The caller
 * caches the result per (kid, enc) and never logs it.
 */
export async function transportEpochKey(privateKey: Buffer, enc: string): Promise<Buffer> {
  const recipientKey = await suite.kem.deserializePrivateKey(arrayBufferOf(privateKey));
  const recipient = await suite.createRecipientContext({ recipientKey, enc: arrayBufferOf(Buffer.from(enc, 'base64url')), info: arrayBufferOf(INFO) });
  return Buffer.from(await recipient.export(arrayBufferOf(EXPORTER_CONTEXT), KEY_BYTES));
}

/**
 * Open a transport-sealed member with its epoch's key (`transportEpochKey`), for the event
 * `event`: its `data`. Throws when it does not open (another event id, tenant, source, type
 * or subject, another key, altered); the error names nothing secret.
 */
export function openTransportSealed(epochKey: Buffer, event: TransportSealedEventBinding, member: TransportSealedPersonal): Record<string, unknown> {
  const nonce = Buffer.from(member.nonce, 'base64url');
  const ct = Buffer.from(member.ct, 'base64url');
  if (nonce.length !== NONCE_BYTES || ct.length < TAG_BYTES) throw new Error('transport-sealed member malformed');
  const decipher = createDecipheriv('aes-256-gcm', epochKey, nonce);
  decipher.setAAD(transportSealingAad(event, member.subjectId, member.kid, member.enc));
  decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(ct.subarray(0, ct.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new Error('transport-sealed member does not open');
  }
  const data: unknown = JSON.parse(plaintext.toString('utf8'));
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('transport-sealed member holds no data object');
  return data as Record<string, unknown>;
}
