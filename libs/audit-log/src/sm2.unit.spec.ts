import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  appendToChain,
  canonicalJson,
  ChainVerifier,
  checkpointKeyId,
  checkpointSignatureValid,
  emptyHead,
  generateCheckpointKeyPair,
  keysOf,
  publicJwk,
  signCheckpoint,
  type AuditRecord,
  type ChainHead,
  type Checkpoint,
  type Jwks,
  type Sm2Jwk,
} from './index';

const sm2 = generateCheckpointKeyPair('sm2');
const sm2Jwk = publicJwk(sm2.publicKey, 'pending') as Sm2Jwk;
const sm2Kid = checkpointKeyId(sm2Jwk);
const ed = generateCheckpointKeyPair('ed25519');
const edJwk = publicJwk(ed.publicKey, 'pending');
const edKid = checkpointKeyId(edJwk);
const jwks: Jwks = { keys: [{ ...edJwk, kid: edKid }, { ...sm2Jwk, kid: sm2Kid }] };

/** One partition of 20 records sealed at 10 and 20 by the given key. */
function chain(kid: string, privateKey: KeyObject, partition = 0): { records: AuditRecord[]; checkpoints: Checkpoint[] } {
  const records: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  let head: ChainHead = emptyHead(partition);
  for (let i = 1; i <= 20; i++) {
    const id = `0193a000-0000-7000-8000-${String(partition * 100 + i).padStart(12, '0')}`;
    const next = appendToChain(head, { id, type: 'credential.secret.read', source: 'credential', tenantId: 'acme', actor: { type: 'user', id: 'u' }, occurredAt: '2026-11-22T10:00:00.000Z', data: {} }, '2026-11-22T10:00:01.000Z');
    records.push(next.record);
    head = next.head;
    if (i % 10 === 0) checkpoints.push(signCheckpoint({ v: 1, partition, seq: head.seq, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId: kid }, privateKey));
  }
  return { records, checkpoints };
}

function verifyAll(records: readonly unknown[], checkpoints: readonly unknown[], keys = keysOf(jwks)) {
  const v = new ChainVerifier({ keys });
  for (const c of checkpoints) v.addCheckpoint(c);
  for (const r of records) v.addRecord(r);
  return v.finish();
}

describe('SM2 checkpoints (addendum: services/audit/docs/audit-log-format-addendum-sm2.md)', () => {
  it('publishes the key as {"kty":"EC","crv":"SM2","x","y"} with an sm2: kid, and reads it back', () => {
    expect(sm2Jwk).toEqual({ kty: 'EC', crv: 'SM2', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), y: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), kid: 'pending', use: 'sig' });
    expect(sm2Kid).toMatch(/^sm2:[A-Za-z0-9_-]{22}$/);
    expect(edKid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const keys = keysOf(jwks);
    expect([...keys.keys()]).toEqual([edKid, sm2Kid]);
    expect(publicJwk(keys.get(sm2Kid)!, sm2Kid)).toEqual({ ...sm2Jwk, kid: sm2Kid });
  });

  it('signs and verifies a chain with SM2 checkpoints; an Ed25519 log still verifies with the same JWKS', () => {
    const s = chain(sm2Kid, sm2.privateKey, 0);
    expect(verifyAll(s.records, s.checkpoints)).toMatchObject({ ok: true, records: 20, checkpoints: 2 });
    const e = chain(edKid, ed.privateKey, 1);
    expect(verifyAll(e.records, e.checkpoints)).toMatchObject({ ok: true, records: 20, checkpoints: 2 });
    expect(verifyAll([...s.records, ...e.records], [...s.checkpoints, ...e.checkpoints])).toMatchObject({ ok: true, records: 40, checkpoints: 4 });
  });

  it('refuses a tampered SM2 checkpoint, a signature by another SM2 key, and a cut tail', () => {
    const { records, checkpoints } = chain(sm2Kid, sm2.privateKey);
    expect(verifyAll(records, [{ ...checkpoints[0], seq: 9 }]).failure).toMatchObject({ reason: 'bad_signature', seq: 9 });
    expect(verifyAll(records, [{ ...checkpoints[0], at: '2026-11-22T10:00:03.000Z' }]).failure).toMatchObject({ reason: 'bad_signature' });
    const sig = Buffer.from(checkpoints[1].sig, 'base64url');
    sig[sig.length - 1] ^= 1;
    expect(verifyAll(records, [{ ...checkpoints[1], sig: sig.toString('base64url') }]).failure).toMatchObject({ reason: 'bad_signature', seq: 20 });
    const other = generateCheckpointKeyPair('sm2').privateKey;
    expect(verifyAll(records, [signCheckpoint({ ...checkpoints[0], sig: undefined } as unknown as Checkpoint, other)]).failure).toMatchObject({ reason: 'bad_signature' });
    expect(verifyAll(records.slice(0, 15), checkpoints).failure).toMatchObject({ reason: 'truncated_tail', seq: 20 });
  });

  it('uses a key only for the algorithm its kid names', () => {
    // An SM2 JWK published under a kid without prefix, or an Ed25519 one under sm2:, is no key at all.
    const confused = keysOf({ keys: [{ ...sm2Jwk, kid: 'plain' }, { ...edJwk, kid: 'sm2:ed' }] });
    expect(confused.size).toBe(0);
    // A checkpoint claiming the Ed25519 kid but signed with SM2 (or the reverse) fails.
    const { checkpoints } = chain(sm2Kid, sm2.privateKey);
    expect(checkpointSignatureValid(checkpoints[0], keysOf(jwks).get(edKid)!)).toBe(false);
    const e = chain(edKid, ed.privateKey);
    expect(checkpointSignatureValid(e.checkpoints[0], keysOf(jwks).get(sm2Kid)!)).toBe(false);
    // Off-curve points are refused at import.
    expect(keysOf({ keys: [{ ...sm2Jwk, kid: sm2Kid, y: sm2Jwk.x }] }).size).toBe(0);
  });

  it('is SM2 (GB/T 32918.2), not ECDSA over the SM2 curve: e = SM3(Z_A ‖ M), Z_A over the empty user id', () => {
    const { checkpoints } = chain(sm2Kid, sm2.privateKey);
    const { sig, ...unsigned } = checkpoints[0];
    const message = Buffer.from(canonicalJson(unsigned), 'utf8');
    const point = { x: big(Buffer.from(sm2Jwk.x, 'base64url')), y: big(Buffer.from(sm2Jwk.y, 'base64url')) };
    const rs = derSignature(Buffer.from(sig, 'base64url'));
    expect(sm2Verifies(message, rs, point, Buffer.alloc(0))).toBe(true);
    expect(sm2Verifies(message, rs, point, Buffer.from('1234567812345678'))).toBe(false);
    expect(ecdsaVerifies(message, rs, point)).toBe(false);
    // What the trap looks like: an 'ec' key from generateKeyPairSync signs ECDSA, which the verifier refuses.
    const trap = generateKeyPairSync('ec', { namedCurve: 'SM2' });
    const trapKid = checkpointKeyId(publicJwk(trap.publicKey, 'x') as Sm2Jwk);
    const ecdsa = sign('sm3', message, trap.privateKey);
    const trapPoint = publicJwk(trap.publicKey, 'x') as Sm2Jwk;
    expect(ecdsaVerifies(message, derSignature(ecdsa), { x: big(Buffer.from(trapPoint.x, 'base64url')), y: big(Buffer.from(trapPoint.y, 'base64url')) })).toBe(true);
    const keys = keysOf({ keys: [{ ...trapPoint, kid: trapKid }] });
    expect(checkpointSignatureValid({ ...unsigned, keyId: trapKid, sig: ecdsa.toString('base64url') }, keys.get(trapKid)!)).toBe(false);
    // signCheckpoint turns such a key into OpenSSL's SM2 type first.
    const fixed = signCheckpoint({ ...unsigned, keyId: trapKid }, trap.privateKey);
    expect(checkpointSignatureValid(fixed, keys.get(trapKid)!)).toBe(true);
  });
});

// ---- An independent SM2 / ECDSA verifier (public values only, BigInt), for the test.
const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const A = 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn;
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const G = { x: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n, y: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n };
type Point = { x: bigint; y: bigint } | null;
const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
function inv(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  return mod(s0, m);
}
function add(p: Point, q: Point): Point {
  if (!p) return q;
  if (!q) return p;
  let l: bigint;
  if (p.x === q.x) {
    if (mod(p.y + q.y, P) === 0n) return null;
    l = mod((3n * p.x * p.x + A) * inv(2n * p.y, P), P);
  } else l = mod((q.y - p.y) * inv(q.x - p.x, P), P);
  const x = mod(l * l - p.x - q.x, P);
  return { x, y: mod(l * (p.x - x) - p.y, P) };
}
function mul(k: bigint, p: Point): Point {
  let r: Point = null;
  for (; k > 0n; k >>= 1n, p = add(p, p)) if (k & 1n) r = add(r, p);
  return r;
}
const big = (b: Buffer) => BigInt(`0x${b.toString('hex') || '0'}`);
const bytes32 = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
const sm3 = (...parts: Buffer[]) => createHash('sm3').update(Buffer.concat(parts)).digest();
function derSignature(der: Buffer): { r: bigint; s: bigint } {
  const rLen = der[3];
  const r = big(der.subarray(4, 4 + rLen));
  const sLen = der[5 + rLen];
  return { r, s: big(der.subarray(6 + rLen, 6 + rLen + sLen)) };
}
function sm2Verifies(message: Buffer, { r, s }: { r: bigint; s: bigint }, pub: { x: bigint; y: bigint }, userId: Buffer): boolean {
  const entl = Buffer.alloc(2);
  entl.writeUInt16BE(userId.length * 8);
  const z = sm3(entl, userId, ...[A, B, G.x, G.y, pub.x, pub.y].map(bytes32));
  const e = big(sm3(z, message));
  const t = mod(r + s, N);
  const point = add(mul(s, G), mul(t, pub));
  return point !== null && mod(e + point.x, N) === r;
}
function ecdsaVerifies(message: Buffer, { r, s }: { r: bigint; s: bigint }, pub: { x: bigint; y: bigint }): boolean {
  const w = inv(s, N);
  const point = add(mul(mod(big(sm3(message)) * w, N), G), mul(mod(r * w, N), pub));
  return point !== null && mod(point.x, N) === r;
}
