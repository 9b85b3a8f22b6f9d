import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, env, loadConfig } from '@palisade/config';

/** The auth service's own settings (besides those every service reads). */
export const authConfigShape = {
  /** Lifetime of access tokens, seconds (the verifiers accept at most 3600). */
  AUTH_ACCESS_TOKEN_TTL_SEC: env.int(300, 30, 3600),
  /** Lifetime of a session (refresh token family), seconds. */
  AUTH_SESSION_TTL_SEC: env.int(12 * 3600, 300, 30 * 24 * 3600),
  /** Signing key rotation period, hours; the next key is published one period ahead. */
  AUTH_KEY_ROTATION_HOURS: env.int(24, 1, 24 * 90),
  /** base64 of 32 bytes: encrypts signing keys at rest. */
  AUTH_KEY_ENCRYPTION_KEY: z.string().optional(),
  /** A file holding that key (base64); in dev-ca mode created under .palisade/auth when absent. */
  AUTH_KEY_ENCRYPTION_KEY_FILE: z.string().optional(),
  /** argon2id memory (KiB) and passes; OWASP minimums by default. */
  AUTH_ARGON2_MEMORY_KIB: env.int(19456, 19456, 4 * 1024 * 1024),
  AUTH_ARGON2_PASSES: env.int(2, 2, 10),
  /** Failures before an account is locked; each further failure doubles the lock. */
  AUTH_LOCKOUT_THRESHOLD: env.int(5, 1, 100),
  /** Failures from one source address (any account) before it is locked. */
  AUTH_ADDRESS_LOCKOUT_THRESHOLD: env.int(50, 1, 100000),
  AUTH_LOCKOUT_BASE_SEC: env.int(30, 1, 3600),
  AUTH_LOCKOUT_MAX_SEC: env.int(900, 1, 86400),
  /**
   * A file holding the one-time bootstrap token (first tenant and its administrator). In
   * dev-ca mode it defaults to .palisade/auth/bootstrap.token (scripts/seed-demo.js writes it).
   */
  AUTH_BOOTSTRAP_TOKEN_FILE: z.string().optional(),
  /** Administrators of this tenant may rotate and revoke the platform's signing keys. */
  AUTH_OPERATOR_TENANT: z.string().optional(),
  /** Where browsers and identity providers reach this service (OIDC redirect URI, SAML ACS). Default https://localhost:<HTTP_PORT>. */
  AUTH_PUBLIC_URL: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).optional(),
  /**
   * Where identity-provider secrets are kept. `vault`: in the credential service, asked
   * over NATS request-reply with auth's own certificate (`palisade.rpc.credential.service-secret-*`).
   * `local` (default): sealed under the key-encryption key in auth's database (development
   * without the vault).
   */
  AUTH_IDP_SECRETS: z.enum(['vault', 'local']).default('local'),
  /** Seconds an identity-provider secret read from the vault stays in memory (0: none; each read is audited there). */
  AUTH_IDP_SECRET_CACHE_SEC: env.int(30, 0, 60),
  TLS_MODE: z.enum(['dev-ca', 'files']).default('dev-ca'),
  PALISADE_PKI_DIR: z.string().optional(),
};

export type AuthConfig = z.infer<z.ZodObject<typeof authConfigShape>> & { keyEncryptionKey: Buffer; publicUrl: string };

export const AUTH_CONFIG = Symbol('auth.config');

function decodeKek(value: string, name: string): Buffer {
  const key = Buffer.from(value.trim(), 'base64');
  if (key.length !== 32) throw new ConfigError([`${name}: must be base64 of 32 bytes (value hidden)`]);
  return key;
}

/** Validated at start; a missing key-encryption key stops the service unless the development CA mode can make one. */
export function loadAuthConfig(source: NodeJS.ProcessEnv = process.env): AuthConfig {
  const c = loadConfig(authConfigShape, source);
  // Replaced by AUTH_IDP_SECRETS: a deployment still setting it meant the vault, not local sealing.
  if (source.CREDENTIAL_URL !== undefined) throw new ConfigError(['CREDENTIAL_URL: no longer read (auth asks the credential service over NATS): set AUTH_IDP_SECRETS=vault instead']);
  let kek: Buffer;
  if (c.AUTH_KEY_ENCRYPTION_KEY) kek = decodeKek(c.AUTH_KEY_ENCRYPTION_KEY, 'AUTH_KEY_ENCRYPTION_KEY');
  else {
    const file = c.AUTH_KEY_ENCRYPTION_KEY_FILE ?? (c.TLS_MODE === 'dev-ca' && c.PALISADE_PKI_DIR ? join(dirname(c.PALISADE_PKI_DIR), 'auth', 'key-encryption.key') : undefined);
    if (!file) throw new ConfigError(['AUTH_KEY_ENCRYPTION_KEY: required (or AUTH_KEY_ENCRYPTION_KEY_FILE) when TLS_MODE=files (unset)']);
    if (!existsSync(file)) {
      if (c.AUTH_KEY_ENCRYPTION_KEY_FILE) throw new ConfigError([`AUTH_KEY_ENCRYPTION_KEY_FILE: ${file} does not exist`]);
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
    }
    kek = decodeKek(readFileSync(file, 'utf8'), 'AUTH_KEY_ENCRYPTION_KEY_FILE');
  }
  const devDir = c.TLS_MODE === 'dev-ca' && c.PALISADE_PKI_DIR ? join(dirname(c.PALISADE_PKI_DIR), 'auth') : undefined;
  const bootstrapTokenFile = c.AUTH_BOOTSTRAP_TOKEN_FILE ?? (devDir && join(devDir, 'bootstrap.token'));
  const publicUrl = (c.AUTH_PUBLIC_URL ?? `https://localhost:${source.HTTP_PORT ?? 7101}`).replace(/\/+$/, '');
  return { ...c, AUTH_BOOTSTRAP_TOKEN_FILE: bootstrapTokenFile, keyEncryptionKey: kek, publicUrl };
}
