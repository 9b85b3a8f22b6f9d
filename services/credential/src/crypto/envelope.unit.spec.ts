import { createCipheriv, createDecipheriv } from 'node:crypto';
import { cipherAvailable, gcmUnwrap, gcmWrap, newDataKey, open, requireCipher, seal, type SealedValue } from './envelope';

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

  it('wraps keys with AES-256-GCM bound to their context', () => {
    const kek = newDataKey('aes-256-gcm');
    const wrapped = gcmWrap(kek, Buffer.from('data key'), Buffer.from('ctx-a'));
    expect(gcmUnwrap(kek, wrapped, Buffer.from('ctx-a')).toString()).toBe('data key');
    expect(() => gcmUnwrap(kek, wrapped, Buffer.from('ctx-b'))).toThrow();
  });

  it('reports SM4-GCM as OpenSSL reports it, and refuses it with a 400 naming the runtime when absent', () => {
    let openssl = true;
    try {
      createCipheriv('sm4-gcm' as 'aes-128-gcm', Buffer.alloc(16), Buffer.alloc(12));
    } catch {
      openssl = false;
    }
    expect(cipherAvailable('sm4-gcm')).toBe(openssl);
    if (openssl) {
      const dek = newDataKey('sm4-gcm');
      const sealed = seal('sm4-gcm', dek, value, binding);
      expect(open(sealed, dek, binding).equals(value)).toBe(true);
      expect(() => open(sealed, dek, { ...binding, version: 9 })).toThrow('does not verify');
    } else {
      expect(() => requireCipher('sm4-gcm')).toThrow(expect.objectContaining({ code: 'validation', message: expect.stringContaining(`OpenSSL ${process.versions.openssl}`) }));
    }
    expect(cipherAvailable('aes-256-gcm')).toBe(true);
  });
});
