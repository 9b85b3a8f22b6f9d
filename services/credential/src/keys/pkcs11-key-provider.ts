import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { PalisadeError } from '@palisade/contracts';
import { canonicalAad, cipherOfContext } from '../crypto/envelope';
import { KeyUnusable, requireProviderCipher, type KeyOptions, type KeyProvider } from './key-provider';

export interface Pkcs11KeyProviderOptions {
  /** The vendor's PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so). */
  library: string;
  tokenLabel: string;
  /** File holding the user PIN (never in the environment, never logged). */
  pinFile: string;
}

const REF = /^pkcs11:palisade-kek-[0-9a-f-]{36}$/;

/**
 * KEKs are AES-256 secret-key objects on an HSM token: generated in the token (or
 * imported by a tenant, BYOK), sensitive and not extractable, used for CKM_AES_GCM
 * with the binding context as AAD. Destroying a KEK destroys the token object.
 */
export class Pkcs11KeyProvider implements KeyProvider {
  readonly name = 'pkcs11' as const;
  private readonly p11 = new pkcs11js.PKCS11();
  private readonly session: Buffer;
  private readonly handles = new Map<string, Buffer>();

  constructor(options: Pkcs11KeyProviderOptions) {
    this.p11.load(options.library);
    this.p11.C_Initialize();
    try {
      const slot = this.p11
        .C_GetSlotList(true)
        .find((s) => this.p11.C_GetTokenInfo(s).label.trim() === options.tokenLabel);
      if (!slot) throw new Error(`no PKCS#11 token labelled ${options.tokenLabel}`);
      this.session = this.p11.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
      this.p11.C_Login(this.session, pkcs11js.CKU_USER, readFileSync(options.pinFile, 'utf8').trim());
    } catch (error) {
      this.p11.C_Finalize();
      throw error;
    }
  }

  async generateKey(_label?: string, options: KeyOptions = {}): Promise<string> {
    requireProviderCipher(this.name, options.cipher ?? 'aes-256-gcm');
    const ref = newRef();
    const handle = this.p11.C_GenerateKey(this.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      ...keyTemplate(ref),
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    ]);
    this.handles.set(ref, handle);
    return ref;
  }

  async importKey(_label: string, material: Buffer, options: KeyOptions = {}): Promise<string> {
    requireProviderCipher(this.name, options.cipher ?? 'aes-256-gcm');
    if (material.length !== 32) throw new PalisadeError('validation', 'material: must be 32 bytes (AES-256)');
    const ref = newRef();
    const handle = this.p11.C_CreateObject(this.session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      ...keyTemplate(ref),
      { type: pkcs11js.CKA_VALUE, value: material },
    ]);
    this.handles.set(ref, handle);
    return ref;
  }

  async verifyReference(keyRef: string): Promise<void> {
    this.handleOf(keyRef, true);
  }

  async wrap(keyRef: string, dataKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    requireProviderCipher(this.name, cipherOfContext(context));
    const iv = randomBytes(12);
    const out = this.withKey(keyRef, (key) => {
      this.p11.C_EncryptInit(this.session, gcm(iv, canonicalAad(context)), key);
      return this.p11.C_Encrypt(this.session, dataKey, Buffer.alloc(dataKey.length + 16));
    });
    return Buffer.concat([iv, out]);
  }

  async unwrap(keyRef: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    if (wrapped.length < 12 + 16) throw new KeyUnusable('the wrapped data key is truncated');
    return this.withKey(keyRef, (key) => {
      this.p11.C_DecryptInit(this.session, gcm(wrapped.subarray(0, 12), canonicalAad(context)), key);
      try {
        return Buffer.from(this.p11.C_Decrypt(this.session, wrapped.subarray(12), Buffer.alloc(wrapped.length)));
      } catch {
        throw new KeyUnusable('the wrapped data key does not verify under this key and context');
      }
    });
  }

  async destroyKey(keyRef: string): Promise<void> {
    for (const handle of this.find(keyRef)) this.p11.C_DestroyObject(this.session, handle);
    this.handles.delete(keyRef);
  }

  async close(): Promise<void> {
    try {
      this.p11.C_Logout(this.session);
      this.p11.C_CloseSession(this.session);
    } finally {
      this.p11.C_Finalize();
    }
  }

  /** Runs with the key's handle; a handle another instance destroyed is looked up again once. */
  private withKey<T>(ref: string, work: (key: Buffer) => T): T {
    try {
      return work(this.handleOf(ref, false));
    } catch (error) {
      if (error instanceof PalisadeError) throw error;
      this.handles.delete(ref);
      try {
        return work(this.handleOf(ref, true));
      } catch (again) {
        if (again instanceof PalisadeError) throw again;
        throw new KeyUnusable(`the token refused the operation (${(again as Error).message.split(':')[0]})`);
      }
    }
  }

  private handleOf(ref: string, fresh: boolean): Buffer {
    const cached = fresh ? undefined : this.handles.get(ref);
    if (cached) return cached;
    const [handle] = this.find(ref);
    if (!handle) throw new KeyUnusable(`${ref} is not on the token (destroyed or never created there)`);
    this.handles.set(ref, handle);
    return handle;
  }

  private find(ref: string): Buffer[] {
    if (!REF.test(ref)) throw new KeyUnusable('not a PKCS#11 key reference');
    this.p11.C_FindObjectsInit(this.session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: ref.slice('pkcs11:'.length) },
    ]);
    try {
      return this.p11.C_FindObjects(this.session, 10);
    } finally {
      this.p11.C_FindObjectsFinal(this.session);
    }
  }
}

function newRef(): string {
  return `pkcs11:palisade-kek-${randomUUID()}`;
}

function keyTemplate(ref: string): pkcs11js.Template {
  const label = ref.slice('pkcs11:'.length);
  return [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: Buffer.from(label.slice(-36).replace(/-/g, ''), 'hex') },
  ];
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 } as pkcs11js.AesGCM,
  };
}
