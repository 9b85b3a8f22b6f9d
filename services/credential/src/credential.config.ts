import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, env, loadConfig } from '@palisade/config';
import { CIPHERS, cipherAvailable } from './crypto/envelope';
import { cipherUnsupportedReason, KEY_PROVIDERS, type KeyProviderName } from './keys/key-provider';
import { STORAGE_BACKENDS } from './storage/ciphertext-store';

export const ACCESS_POLICIES = ['scopes', 'policy'] as const;

/** The credential service's own settings (besides those every service reads). */
export const credentialConfigShape = {
  /** Key providers this vault may use, comma-separated: local, pkcs11, aws-kms. */
  CREDENTIAL_KEY_PROVIDERS: z
    .string()
    .default('local')
    .transform((v) => [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))])
    .refine((list) => list.length > 0 && list.every((p) => (KEY_PROVIDERS as readonly string[]).includes(p)), `must list some of ${KEY_PROVIDERS.join(', ')}`),
  /** Provider of KEKs the vault generates for new tenants. */
  CREDENTIAL_DEFAULT_KEY_PROVIDER: z.enum(KEY_PROVIDERS).default('local'),
  /** local provider: 32-byte master key file (created 0600 when absent) and the KEK store. */
  CREDENTIAL_MASTER_KEY_FILE: z.string().optional(),
  CREDENTIAL_KEYSTORE_DIR: z.string().optional(),
  /** pkcs11 provider: the vendor's module, the token and a file with the user PIN. */
  PKCS11_LIBRARY: z.string().optional(),
  PKCS11_TOKEN_LABEL: z.string().optional(),
  PKCS11_PIN_FILE: z.string().optional(),
  /** aws-kms provider and Secrets Manager storage; credentials from the SDK's default chain. */
  AWS_REGION: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region, e.g. eu-central-1').optional(),
  AWS_KMS_ENDPOINT: env.url(['https', 'http']).optional(),
  AWS_SECRETS_MANAGER_ENDPOINT: env.url(['https', 'http']).optional(),
  CREDENTIAL_SECRETS_MANAGER_PREFIX: z.string().regex(/^[A-Za-z0-9/_+=.@-]{1,64}$/).default('palisade'),
  /** Where ciphertexts live. */
  CREDENTIAL_STORAGE: z.enum(STORAGE_BACKENDS).default('postgres'),
  /** Cipher of new tenants' secrets (a tenant may choose another). */
  CREDENTIAL_DEFAULT_CIPHER: z.enum(CIPHERS).default('aes-256-gcm'),
  CREDENTIAL_ROTATION_DAYS: env.int(90, 1, 3650),
  CREDENTIAL_OVERLAP_SECONDS: env.int(86400, 0, 30 * 86400),
  CREDENTIAL_OVERDUE_AFTER_DAYS: env.int(7, 0, 365),
  CREDENTIAL_LEASE_TTL_SECONDS: env.int(30, 1, 60),
  CREDENTIAL_LEASE_MAX_USES: env.int(10, 1, 100),
  /** How often due/overdue rotations, overlap retirements and expired leases are handled. */
  CREDENTIAL_MAINTENANCE_INTERVAL_MS: env.int(60000, 100, 3600000),
  /** Who decides access: `scopes` (token scopes, ScopeAccessPolicy) or `policy` (the policy service, PolicyAccessPolicy). */
  CREDENTIAL_ACCESS_POLICY: z.enum(ACCESS_POLICIES).default('scopes'),
  /** With `policy`: past this, a decision is a refusal (fail-closed). */
  CREDENTIAL_POLICY_TIMEOUT_MS: env.int(2000, 50, 30000),
  TLS_MODE: z.enum(['dev-ca', 'files']).default('dev-ca'),
  PALISADE_PKI_DIR: z.string().optional(),
};

export type CredentialConfig = Omit<z.infer<z.ZodObject<typeof credentialConfigShape>>, 'CREDENTIAL_KEY_PROVIDERS'> & {
  CREDENTIAL_KEY_PROVIDERS: KeyProviderName[];
  masterKeyFile?: string;
  keystoreDir?: string;
};

export const CREDENTIAL_CONFIG = Symbol('credential.config');

/** Validated at start, naming every bad variable; a provider's settings are required only when it is enabled. */
export function loadCredentialConfig(source: NodeJS.ProcessEnv = process.env): CredentialConfig {
  const c = loadConfig(credentialConfigShape, source) as unknown as CredentialConfig;
  const problems: string[] = [];
  const enabled = new Set(c.CREDENTIAL_KEY_PROVIDERS);
  if (!enabled.has(c.CREDENTIAL_DEFAULT_KEY_PROVIDER)) {
    problems.push(`CREDENTIAL_DEFAULT_KEY_PROVIDER: ${c.CREDENTIAL_DEFAULT_KEY_PROVIDER} is not in CREDENTIAL_KEY_PROVIDERS`);
  }
  let masterKeyFile = c.CREDENTIAL_MASTER_KEY_FILE;
  if (enabled.has('local') && !masterKeyFile) {
    if (c.TLS_MODE === 'dev-ca' && c.PALISADE_PKI_DIR) masterKeyFile = join(dirname(c.PALISADE_PKI_DIR), 'credential', 'master.key');
    else problems.push('CREDENTIAL_MASTER_KEY_FILE: required when the local key provider is enabled (unset)');
  }
  if (enabled.has('pkcs11')) {
    for (const name of ['PKCS11_LIBRARY', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN_FILE'] as const) {
      if (!c[name]) problems.push(`${name}: required when the pkcs11 key provider is enabled (unset)`);
    }
  }
  if ((enabled.has('aws-kms') || c.CREDENTIAL_STORAGE === 'aws-secrets-manager') && !c.AWS_REGION) {
    problems.push('AWS_REGION: required with the aws-kms key provider or aws-secrets-manager storage (unset)');
  }
  const unsupported = cipherUnsupportedReason(c.CREDENTIAL_DEFAULT_KEY_PROVIDER, c.CREDENTIAL_DEFAULT_CIPHER);
  if (unsupported) problems.push(`CREDENTIAL_DEFAULT_CIPHER: ${c.CREDENTIAL_DEFAULT_CIPHER} with CREDENTIAL_DEFAULT_KEY_PROVIDER=${c.CREDENTIAL_DEFAULT_KEY_PROVIDER}: ${unsupported}`);
  if (!cipherAvailable(c.CREDENTIAL_DEFAULT_CIPHER)) {
    problems.push(`CREDENTIAL_DEFAULT_CIPHER: ${c.CREDENTIAL_DEFAULT_CIPHER} is not provided by this runtime's OpenSSL ${process.versions.openssl}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...c, masterKeyFile, keystoreDir: c.CREDENTIAL_KEYSTORE_DIR ?? (masterKeyFile ? join(dirname(masterKeyFile), 'keys') : undefined) };
}
