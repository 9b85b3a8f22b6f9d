import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PalisadeError } from '@palisade/contracts';
import { canonicalAad, cipherOfContext, unwrapKey, wrapKey, type CipherName } from '../crypto/envelope';
import { KeyUnusable, type KeyOptions, type KeyProvider } from './key-provider';

export interface LocalKeyProviderOptions {
  /** 32 random bytes; created (0600) when missing. */
  masterKeyFile: string;
  /** Where KEKs are kept, each encrypted under the master key. */
  keystoreDir: string;
}

/** `local:<uuid>`: sealed with AES-256-GCM under the master key; `local:sm4:<uuid>`: with the sm4 construction. */
const REF = /^local:(sm4:)?[0-9a-f-]{36}$/;

/**
 * Development and air-gapped single hosts: KEKs are random 256-bit keys kept in files,
 * each sealed under a master key file (AAD = the key's reference): with AES-256-GCM, or,
 * for a KEK made for an sm4 tenant, with the sm4 construction (SM4-CTR + HMAC-SM3, keys
 * from HKDF-SM3), so that no AES touches that tenant's keys. A data key is wrapped with
 * the cipher its context names (the cipher of the value it encrypts). Destroying a KEK
 * overwrites and removes its file.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly name = 'local' as const;
  private readonly master: Buffer;
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly options: LocalKeyProviderOptions) {
    this.master = loadOrCreateMasterKey(options.masterKeyFile);
    mkdirSync(options.keystoreDir, { recursive: true, mode: 0o700 });
  }

  async generateKey(_label?: string, options: KeyOptions = {}): Promise<string> {
    return this.store(randomBytes(32), options.cipher ?? 'aes-256-gcm');
  }

  async importKey(_label: string, material: Buffer, options: KeyOptions = {}): Promise<string> {
    if (material.length !== 32) throw new PalisadeError('validation', 'material: must be 32 bytes (AES-256)');
    return this.store(Buffer.from(material), options.cipher ?? 'aes-256-gcm');
  }

  async verifyReference(keyRef: string): Promise<void> {
    this.kek(keyRef);
  }

  async wrap(keyRef: string, dataKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    return wrapKey(cipherOfContext(context), this.kek(keyRef), dataKey, canonicalAad(context));
  }

  async unwrap(keyRef: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const kek = this.kek(keyRef);
    try {
      return unwrapKey(cipherOfContext(context), kek, wrapped, canonicalAad(context));
    } catch {
      throw new KeyUnusable('the wrapped data key does not verify under this key and context');
    }
  }

  async destroyKey(keyRef: string): Promise<void> {
    const file = this.fileOf(keyRef);
    const cached = this.cache.get(keyRef);
    cached?.fill(0);
    this.cache.delete(keyRef);
    if (!existsSync(file)) return;
    const size = readFileSync(file).length;
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, randomBytes(size), 0, size, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(file);
  }

  async close(): Promise<void> {
    for (const key of this.cache.values()) key.fill(0);
    this.cache.clear();
  }

  private store(material: Buffer, cipher: CipherName): string {
    const ref = cipher === 'sm4' ? `local:sm4:${randomUUID()}` : `local:${randomUUID()}`;
    const file = this.fileOf(ref);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, wrapKey(sealingOf(ref), this.master, material, Buffer.from(ref)), { mode: 0o600 });
    renameSync(tmp, file);
    this.cache.set(ref, material);
    return ref;
  }

  private kek(ref: string): Buffer {
    const cached = this.cache.get(ref);
    if (cached) return cached;
    const file = this.fileOf(ref);
    if (!existsSync(file)) throw new KeyUnusable(`${ref} does not exist (destroyed or never created here)`);
    let material: Buffer;
    try {
      material = unwrapKey(sealingOf(ref), this.master, readFileSync(file), Buffer.from(ref));
    } catch {
      throw new KeyUnusable(`${ref} does not open under this master key`);
    }
    this.cache.set(ref, material);
    return material;
  }

  private fileOf(ref: string): string {
    if (!REF.test(ref)) throw new KeyUnusable('not a local key reference');
    const sm4 = ref.startsWith('local:sm4:');
    return join(this.options.keystoreDir, `${ref.slice(sm4 ? 'local:sm4:'.length : 'local:'.length)}${sm4 ? '.sm4' : ''}.kek`);
  }
}

/** How a KEK file is sealed under the master key: named by its reference. */
function sealingOf(ref: string): CipherName {
  return ref.startsWith('local:sm4:') ? 'sm4' : 'aes-256-gcm';
}

function loadOrCreateMasterKey(file: string): Buffer {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, randomBytes(32), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const key = readFileSync(file);
  if (key.length !== 32) throw new Error(`the master key file ${file} must hold exactly 32 bytes`);
  return key;
}
