import { sqlMigration } from '@palisade/postgres';

/**
 * Identity providers per tenant (projection of auth.identity-provider.* events) and
 * their secrets, sealed with AES-256-GCM under the key-encryption key, never in events.
 * MFA challenges remember the sign-in method they continue.
 */
export const identityProvidersMigration = sqlMigration('AuthIdentityProviders1764000000008', (s, app) => [
  `CREATE TABLE ${s}.identity_providers (
     tenant_id text NOT NULL,
     id        text NOT NULL,
     type      text NOT NULL CHECK (type IN ('oidc', 'saml', 'ldap')),
     enabled   boolean NOT NULL,
     settings  jsonb NOT NULL,
     version   integer NOT NULL,
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE TABLE ${s}.identity_provider_secrets (
     tenant_id   text NOT NULL,
     provider_id text NOT NULL,
     sealed      bytea NOT NULL,
     PRIMARY KEY (tenant_id, provider_id)
   )`,
  `ALTER TABLE ${s}.mfa_challenges ADD COLUMN method text NOT NULL DEFAULT 'password'`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.identity_providers, ${s}.identity_provider_secrets TO ${app}`,
]);

/**
 * With the credential service (AUTH_IDP_SECRETS=vault), a provider's secret lives in the vault and
 * auth keeps only its reference; sealed values remain for development without the vault.
 */
export const idpSecretRefsMigration = sqlMigration('AuthIdpSecretRefs1764000000020', (s) => [
  `ALTER TABLE ${s}.identity_provider_secrets
     ALTER COLUMN sealed DROP NOT NULL,
     ADD COLUMN secret_id text,
     ADD COLUMN secret_version integer,
     ADD CONSTRAINT identity_provider_secrets_one_kind CHECK ((sealed IS NULL) <> (secret_id IS NULL) AND (secret_id IS NULL) = (secret_version IS NULL))`,
]);
