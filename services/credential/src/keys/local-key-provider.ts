import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PalisadeError } from '@palisade/contracts';
import { canonicalAad, gcmUnwrap, gcmWrap } from '../crypto/envelope';
import { KeyUnusable, type KeyProvider } from './key-provider';

export interface LocalKeyProviderOptions {
  /** 32 random bytes; created (0600) when missing. */
  masterKeyFile: string;
  /** Where KEKs are kept, each encrypted under the master key. */
  keystoreDir: string;
}

const REF = /^local:[0-9a-f-]{36}$/;

/**
 * Development and air-gapped single hosts: KEKs are random 256-bit keys kept in files,
 * each sealed with AES-256-GCM under a master key file (AAD = the key's reference).
 * Destroying a KEK overwrites and removes its file.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly name = 'local' as const;
  private readonly master: Buffer;
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly options: LocalKeyProviderOptions) {
    this.master = loadOrCreateMasterKey(options.masterKeyFile);
    mkdirSync(options.keystoreDir, { recursive: true, mode: 0o700 });
  }

  async generateKey(): Promise<string> {
    return this.store(randomBytes(32));
  }

  async importKey(_label: string, material: Buffer): Promise<string> {
    if (material.length !== 32) throw new PalisadeError('validation', 'material: must be 32 bytes (AES-256)');
    return this.store(Buffer.from(material));
  }

  async verifyReference(keyRef: string): Promise<void> {
    this.kek(keyRef);
  }

  async wrap(keyRef: string, dataKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    return gcmWrap(this.kek(keyRef), dataKey, canonicalAad(context));
  }

  async unwrap(keyRef: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const kek = this.kek(keyRef);
    try {
      return gcmUnwrap(kek, wrapped, canonicalAad(context));
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

  private store(material: Buffer): string {
    const ref = `local:${randomUUID()}`;
    const file = this.fileOf(ref);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, gcmWrap(this.master, material, Buffer.from(ref)), { mode: 0o600 });
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
      material = gcmUnwrap(this.master, readFileSync(file), Buffer.from(ref));
    } catch {
      throw new KeyUnusable(`${ref} does not open under this master key`);
    }
    this.cache.set(ref, material);
    return material;
  }

  private fileOf(ref: string): string {
    if (!REF.test(ref)) throw new KeyUnusable('not a local key reference');
    return join(this.options.keystoreDir, `${ref.slice('local:'.length)}.kek`);
  }
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
