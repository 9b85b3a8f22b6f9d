import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkcs11js from 'pkcs11js';
import { AwsKmsKeyProvider } from '../src/keys/aws-kms-key-provider';
import type { KeyProvider } from '../src/keys/key-provider';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { startKmsEndpoint, type KmsEndpoint } from './support/aws-json-endpoint';
import { softHsm } from './support/harness';

const ctx = { tenantId: 'acme', secretId: 's-1', version: '1', cipher: 'aes-256-gcm', palisade: 'credential.secret.v1' };

/** The contract every key provider keeps, run against each real implementation. */
function providerContract(name: string, make: () => Promise<{ provider: KeyProvider; cleanup(): Promise<void> }>) {
  describe(`${name} key provider`, () => {
    let provider: KeyProvider;
    let cleanup: () => Promise<void>;
    beforeAll(async () => ({ provider, cleanup } = await make()));
    afterAll(() => cleanup());

    it('wraps and unwraps a data key under a generated KEK, bound to its context', async () => {
      const ref = await provider.generateKey('palisade/acme/kek');
      const dek = randomBytes(32);
      const wrapped = await provider.wrap(ref, dek, ctx);
      expect(wrapped.includes(dek)).toBe(false);
      expect((await provider.unwrap(ref, wrapped, ctx)).equals(dek)).toBe(true);
      await expect(provider.unwrap(ref, wrapped, { ...ctx, secretId: 's-2' })).rejects.toMatchObject({ code: 'illegal_state' });
      await expect(provider.unwrap(ref, wrapped, { ...ctx, tenantId: 'globex' })).rejects.toMatchObject({ code: 'illegal_state' });
    });

    it('does not unwrap under another KEK', async () => {
      const a = await provider.generateKey('a');
      const b = await provider.generateKey('b');
      const wrapped = await provider.wrap(a, randomBytes(32), ctx);
      await expect(provider.unwrap(b, wrapped, ctx)).rejects.toMatchObject({ code: 'illegal_state' });
    });

    it('imports tenant key material (BYOK): the same material unwraps what the provider wrapped', async () => {
      const material = randomBytes(32);
      const ref = await provider.importKey('palisade/acme/byok', Buffer.from(material));
      const dek = randomBytes(32);
      const wrapped = await provider.wrap(ref, dek, ctx);
      expect((await provider.unwrap(ref, wrapped, ctx)).equals(dek)).toBe(true);
      await expect(provider.importKey('short', randomBytes(16))).rejects.toMatchObject({ code: 'validation' });
    });

    it('destroys a KEK: what it wrapped is unreadable from then on', async () => {
      const ref = await provider.generateKey('doomed');
      const wrapped = await provider.wrap(ref, randomBytes(32), ctx);
      await provider.destroyKey(ref);
      await expect(provider.unwrap(ref, wrapped, ctx)).rejects.toMatchObject({ code: 'illegal_state' });
      await expect(provider.wrap(ref, randomBytes(32), ctx)).rejects.toMatchObject({ code: 'illegal_state' });
    });
  });
}

providerContract('local', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-local-kp-'));
  return { provider: new LocalKeyProvider({ masterKeyFile: join(dir, 'master.key'), keystoreDir: join(dir, 'keys') }), cleanup: async () => rmSync(dir, { recursive: true }) };
});

providerContract('pkcs11 (SoftHSM2)', async () => {
  const provider = softHsm();
  return { provider, cleanup: () => provider.close() };
});

let kms: KmsEndpoint;
providerContract('aws-kms (local endpoint speaking the KMS JSON protocol)', async () => {
  kms = await startKmsEndpoint();
  const provider = new AwsKmsKeyProvider({ region: 'eu-central-1', endpoint: kms.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' } });
  return {
    provider,
    cleanup: async () => {
      await provider.close();
      await kms.close();
    },
  };
});

describe('provider specifics', () => {
  it('local: KEK files are sealed under the master key (no raw key on disk) and a second instance reads them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-local-kp-'));
    try {
      const options = { masterKeyFile: join(dir, 'master.key'), keystoreDir: join(dir, 'keys') };
      const material = randomBytes(32);
      const first = new LocalKeyProvider(options);
      const ref = await first.importKey('x', Buffer.from(material));
      const [file] = readdirSync(options.keystoreDir);
      expect(readFileSync(join(options.keystoreDir, file)).includes(material)).toBe(false);
      const wrapped = await first.wrap(ref, Buffer.from('dek'), ctx);
      const second = new LocalKeyProvider(options);
      expect((await second.unwrap(ref, wrapped, ctx)).toString()).toBe('dek');
      const other = new LocalKeyProvider({ ...options, masterKeyFile: join(dir, 'other.key') });
      await expect(other.unwrap(ref, wrapped, ctx)).rejects.toThrow('does not open under this master key');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('local: an sm4 KEK is sealed under the master key with SM4 and wraps sm4 data keys with SM4-CTR + HMAC-SM3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-local-kp-'));
    try {
      const options = { masterKeyFile: join(dir, 'master.key'), keystoreDir: join(dir, 'keys') };
      const sm4Ctx = { ...ctx, cipher: 'sm4' };
      const material = randomBytes(32);
      const first = new LocalKeyProvider(options);
      const ref = await first.importKey('x', Buffer.from(material), { cipher: 'sm4' });
      expect(ref).toMatch(/^local:sm4:[0-9a-f-]{36}$/);
      const [file] = readdirSync(options.keystoreDir);
      expect(file).toMatch(/\.sm4\.kek$/);
      const sealedKek = readFileSync(join(options.keystoreDir, file));
      expect(sealedKek).toHaveLength(16 + 32 + 32); // SM4 construction: iv 16, tag 32, key 32 (AES-GCM would be 12 + 16 + 32)
      expect(sealedKek.includes(material)).toBe(false);
      const dek = randomBytes(32);
      const wrapped = await first.wrap(ref, dek, sm4Ctx);
      expect(wrapped).toHaveLength(16 + 32 + 32);
      const second = new LocalKeyProvider(options);
      expect((await second.unwrap(ref, wrapped, sm4Ctx)).equals(dek)).toBe(true);
      await expect(second.unwrap(ref, wrapped, { ...sm4Ctx, secretId: 's-2' })).rejects.toMatchObject({ code: 'illegal_state' });
      // Relabelling the context's cipher does not open it either.
      await expect(second.unwrap(ref, wrapped, ctx)).rejects.toMatchObject({ code: 'illegal_state' });
      const generated = await second.generateKey('y', { cipher: 'sm4' });
      expect((await first.unwrap(generated, await second.wrap(generated, dek, sm4Ctx), sm4Ctx)).equals(dek)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('pkcs11 (SoftHSM2): refuses SM4 KEKs when they are asked for, naming the mechanisms it lacks', async () => {
    const provider = softHsm();
    try {
      const refusal = { code: 'validation', message: expect.stringMatching(/sm4 with provider pkcs11: .*SoftHSM2 has none.*CKM_AES_GCM/) };
      await expect(provider.generateKey('x', { cipher: 'sm4' })).rejects.toMatchObject(refusal);
      await expect(provider.importKey('x', randomBytes(32), { cipher: 'sm4' })).rejects.toMatchObject(refusal);
      const aes = await provider.generateKey('x', { cipher: 'aes-256-gcm' });
      await expect(provider.wrap(aes, randomBytes(32), { ...ctx, cipher: 'sm4' })).rejects.toMatchObject(refusal);
      await provider.destroyKey(aes);
    } finally {
      await provider.close();
    }
  });

  it('pkcs11: KEKs on the token are sensitive and not extractable', async () => {
    const provider = softHsm();
    try {
      const ref = await provider.generateKey('x');
      const p11 = (provider as unknown as { p11: pkcs11js.PKCS11 }).p11;
      const session = (provider as unknown as { session: Buffer }).session;
      p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: ref.slice('pkcs11:'.length) }]);
      const [handle] = p11.C_FindObjects(session, 1) as Buffer[];
      p11.C_FindObjectsFinal(session);
      const attrs = p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_TOKEN }]);
      expect(attrs.map((a) => (a.value as Buffer)[0])).toEqual([1, 0, 1]);
      expect(() => p11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
    } finally {
      await provider.close();
    }
  });

  it('aws-kms: the real SDK signs its requests and a tenant disabling its own key cuts access at once', async () => {
    const endpoint = await startKmsEndpoint();
    const provider = new AwsKmsKeyProvider({ region: 'eu-central-1', endpoint: endpoint.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' } });
    try {
      const arn = endpoint.createKey();
      await provider.verifyReference(`aws-kms:${arn}`);
      const wrapped = await provider.wrap(`aws-kms:${arn}`, Buffer.from('dek'), ctx);
      endpoint.disableKey(arn);
      await expect(provider.unwrap(`aws-kms:${arn}`, wrapped, ctx)).rejects.toMatchObject({ code: 'illegal_state', message: expect.stringContaining('DisabledException') });
      await expect(provider.verifyReference(`aws-kms:${arn}`)).rejects.toMatchObject({ code: 'validation' });
      expect(endpoint.unsignedRequests).toBe(0);
      expect(endpoint.calls).toEqual(['DescribeKey', 'Encrypt', 'Decrypt', 'DescribeKey']);
    } finally {
      await provider.close();
      await endpoint.close();
    }
  });
});
