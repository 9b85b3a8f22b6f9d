import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import { canonicalAad, bindingContext, cipherAvailable, newDataKey, open, seal, sm4Open, sm4Seal, SM4_ENCRYPTION_INFO, SM4_MAC_INFO, unwrapKey, wrapKey, type SealedValue } from './envelope';

const binding = { tenantId: 'acme', secretId: '0190c8a4-0000-7000-8000-000000000001', version: 1 };
const value = Buffer.from('gerrit-http-password-🔑');

describe('envelope encryption', () => {
  it('round-trips a value under a fresh 256-bit data key with AES-256-GCM', () => {
    const dek = newDataKey('aes-256-gcm');
    expect(dek).toHaveLength(32);
    const sealed = seal('aes-256-gcm', dek, value, binding);
    expect(sealed.iv).toHaveLength(12);
    expect(sealed.tag).toHaveLength(16);
    expect(sealed.ciphertext.includes(value)).toBe(false);
    expect(open(sealed, dek, binding).equals(value)).toBe(true);
  });

  it('uses a fresh IV for every encryption', () => {
    const dek = newDataKey('aes-256-gcm');
    const a = seal('aes-256-gcm', dek, value, binding);
    const b = seal('aes-256-gcm', dek, value, binding);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it.each([
    ['another tenant', { ...binding, tenantId: 'globex' }],
    ['another secret', { ...binding, secretId: '0190c8a4-0000-7000-8000-000000000002' }],
    ['another version', { ...binding, version: 2 }],
  ])('refuses a ciphertext moved to %s (the AAD binds it)', (_label, elsewhere) => {
    const dek = newDataKey('aes-256-gcm');
    const sealed = seal('aes-256-gcm', dek, value, binding);
    expect(() => open(sealed, dek, elsewhere)).toThrow('does not verify');
  });

  it('refuses a swapped ciphertext between two rows even with the right key of each', () => {
    const dekA = newDataKey('aes-256-gcm');
    const dekB = newDataKey('aes-256-gcm');
    const a = seal('aes-256-gcm', dekA, Buffer.from('value-a'), binding);
    const bBinding = { ...binding, secretId: '0190c8a4-0000-7000-8000-00000000000b' };
    const b = seal('aes-256-gcm', dekB, Buffer.from('value-b'), bBinding);
    // Row A now holds B's ciphertext and B's data key: still refused, the binding differs.
    expect(() => open(b, dekB, binding)).toThrow('does not verify');
    expect(() => open(a, dekA, bBinding)).toThrow('does not verify');
  });

  it('refuses a tampered ciphertext, tag or cipher name', () => {
    const dek = newDataKey('aes-256-gcm');
    const sealed = seal('aes-256-gcm', dek, value, binding);
    const flipped = Buffer.from(sealed.ciphertext);
    flipped[0] ^= 1;
    expect(() => open({ ...sealed, ciphertext: flipped }, dek, binding)).toThrow('does not verify');
    expect(() => open({ ...sealed, tag: Buffer.alloc(16) }, dek, binding)).toThrow('does not verify');
    expect(() => open({ ...sealed, tag: sealed.tag.subarray(0, 4) }, dek, binding)).toThrow('does not verify');
  });

  it('is standard AES-256-GCM: node:crypto decrypts it given the canonical AAD', () => {
    const dek = newDataKey('aes-256-gcm');
    const sealed: SealedValue = seal('aes-256-gcm', dek, value, binding);
    const d = createDecipheriv('aes-256-gcm', dek, sealed.iv);
    d.setAAD(
      Buffer.from(
        JSON.stringify([
          ['cipher', 'aes-256-gcm'],
          ['palisade', 'credential.secret.v1'],
          ['secretId', binding.secretId],
          ['tenantId', 'acme'],
          ['version', '1'],
        ]),
      ),
    );
    d.setAuthTag(sealed.tag);
    expect(Buffer.concat([d.update(sealed.ciphertext), d.final()]).equals(value)).toBe(true);
  });

  it.each(['aes-256-gcm', 'sm4'] as const)('wraps keys with %s bound to their context', (cipher) => {
    const kek = newDataKey(cipher);
    const wrapped = wrapKey(cipher, kek, Buffer.from('data key'), Buffer.from('ctx-a'));
    expect(unwrapKey(cipher, kek, wrapped, Buffer.from('ctx-a')).toString()).toBe('data key');
    expect(() => unwrapKey(cipher, kek, wrapped, Buffer.from('ctx-b'))).toThrow();
    expect(() => unwrapKey(cipher, kek, wrapped.subarray(0, 20), Buffer.from('ctx-a'))).toThrow();
  });
});

describe('the runtime has the national algorithms (published vectors)', () => {
  it('SM4 (GB/T 32907-2016, appendix A example 1): one block of sm4-ecb', () => {
    const key = Buffer.from('0123456789abcdeffedcba9876543210', 'hex');
    const c = createCipheriv('sm4-ecb', key, null).setAutoPadding(false);
    expect(Buffer.concat([c.update(key), c.final()]).toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
  });

  it('SM3 (GB/T 32905-2016, appendix A example 1): "abc"', () => {
    expect(createHash('sm3').update('abc').digest('hex')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });

  it('SM3 (GB/T 32905-2016, example 2): "abcd" × 16', () => {
    expect(createHash('sm3').update('abcd'.repeat(16)).digest('hex')).toBe('debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
  });

  it('reports both ciphers available on this runtime', () => {
    expect(cipherAvailable('aes-256-gcm')).toBe(true);
    expect(cipherAvailable('sm4')).toBe(true);
  });
});

describe('cipher sm4: SM4-CTR + HMAC-SM3, encrypt-then-MAC', () => {
  it('round-trips a value; 128-bit IV, 256-bit tag, fresh IV each time, value not in the ciphertext', () => {
    const dek = newDataKey('sm4');
    expect(dek).toHaveLength(32);
    const sealed = seal('sm4', dek, value, binding);
    expect(sealed).toMatchObject({ cipher: 'sm4' });
    expect(sealed.iv).toHaveLength(16);
    expect(sealed.tag).toHaveLength(32);
    expect(sealed.ciphertext).toHaveLength(value.length);
    expect(sealed.ciphertext.includes(value)).toBe(false);
    expect(open(sealed, dek, binding).equals(value)).toBe(true);
    expect(seal('sm4', dek, value, binding).iv.equals(sealed.iv)).toBe(false);
    expect(open(seal('sm4', dek, Buffer.alloc(0), binding), dek, binding)).toHaveLength(0);
  });

  it('is the documented construction: HKDF-SM3 keys, SM4-CTR, HMAC-SM3 over AAD ‖ IV ‖ ciphertext ‖ AAD bit length', () => {
    const dek = newDataKey('sm4');
    const sealed = seal('sm4', dek, value, binding);
    const aad = canonicalAad(bindingContext(binding, 'sm4'));
    expect(aad.toString()).toContain('"sm4"');
    const encKey = Buffer.from(hkdfSync('sm3', dek, Buffer.alloc(0), SM4_ENCRYPTION_INFO, 16));
    const macKey = Buffer.from(hkdfSync('sm3', dek, Buffer.alloc(0), SM4_MAC_INFO, 32));
    expect(encKey.equals(macKey.subarray(0, 16))).toBe(false);
    const bits = Buffer.alloc(8);
    bits.writeBigUInt64BE(BigInt(aad.length * 8));
    const tag = createHmac('sm3', macKey).update(Buffer.concat([aad, sealed.iv, sealed.ciphertext, bits])).digest();
    expect(tag.equals(sealed.tag)).toBe(true);
    const d = createDecipheriv('sm4-ctr', encKey, sealed.iv);
    expect(Buffer.concat([d.update(sealed.ciphertext), d.final()]).equals(value)).toBe(true);
    // The data key itself never keys SM4 or the MAC.
    expect(() => sm4Open(encKey, sealed, aad)).toThrow();
  });

  it.each([
    ['the AAD', (s: SealedValue, aad: Buffer) => ({ s, aad: Buffer.concat([aad, Buffer.from(' ')]) })],
    ['the IV', (s: SealedValue, aad: Buffer) => ({ s: { ...s, iv: flip(s.iv) }, aad })],
    ['the ciphertext', (s: SealedValue, aad: Buffer) => ({ s: { ...s, ciphertext: flip(s.ciphertext) }, aad })],
    ['the tag', (s: SealedValue, aad: Buffer) => ({ s: { ...s, tag: flip(s.tag) }, aad })],
    ['the tag (truncated)', (s: SealedValue, aad: Buffer) => ({ s: { ...s, tag: s.tag.subarray(0, 16) }, aad })],
    ['the ciphertext (truncated)', (s: SealedValue, aad: Buffer) => ({ s: { ...s, ciphertext: s.ciphertext.subarray(1) }, aad })],
  ])('refuses a change of %s', (_part, tamper) => {
    const dek = newDataKey('sm4');
    const aad = canonicalAad(bindingContext(binding, 'sm4'));
    const sealed: SealedValue = { cipher: 'sm4', ...sm4Seal(dek, value, aad) };
    expect(sm4Open(dek, sealed, aad).equals(value)).toBe(true);
    const { s, aad: changed } = tamper(sealed, aad);
    expect(() => sm4Open(dek, s, changed)).toThrow('sm4');
  });

  it.each([
    ['another tenant', { ...binding, tenantId: 'globex' }],
    ['another secret', { ...binding, secretId: '0190c8a4-0000-7000-8000-000000000002' }],
    ['another version', { ...binding, version: 2 }],
  ])('refuses a ciphertext moved to %s (swapped AAD)', (_label, elsewhere) => {
    const dek = newDataKey('sm4');
    const sealed = seal('sm4', dek, value, binding);
    expect(() => open(sealed, dek, elsewhere)).toThrow('does not verify');
  });

  it('refuses a swapped row, and a ciphertext relabelled as the other cipher', () => {
    const dekA = newDataKey('sm4');
    const dekB = newDataKey('sm4');
    const bBinding = { ...binding, secretId: '0190c8a4-0000-7000-8000-00000000000b' };
    const b = seal('sm4', dekB, Buffer.from('value-b'), bBinding);
    expect(() => open(b, dekB, binding)).toThrow('does not verify');
    expect(() => open(b, dekA, bBinding)).toThrow('does not verify');
    const aes = seal('aes-256-gcm', newDataKey('aes-256-gcm'), value, binding);
    expect(() => open({ ...aes, cipher: 'sm4' }, dekA, binding)).toThrow('does not verify');
  });
});

function flip(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[out.length - 1] ^= 1;
  return out;
}
