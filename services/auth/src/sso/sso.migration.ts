import { sqlMigration } from '@palisade/postgres';

/**
 * Single sign-on in progress, shared by every auth instance: OIDC authorization requests
 * (by the SHA-256 of their `state`; the PKCE verifier sealed) and SAML AuthnRequests (by
 * their ID, for InResponseTo), each usable once; and the SAML assertions already
 * accepted, so none is accepted twice.
 */
export const ssoMigration = sqlMigration('AuthSso1764000000009', (s, app) => [
  `CREATE TABLE ${s}.sso_requests (
     key         bytea PRIMARY KEY,
     tenant_id   text NOT NULL,
     provider_id text NOT NULL,
     protocol    text NOT NULL CHECK (protocol IN ('oidc', 'saml')),
     secret      bytea,
     nonce       text,
     audience    text[] NOT NULL,
     expires_at  timestamptz NOT NULL,
     used_at     timestamptz
   )`,
  `CREATE INDEX sso_requests_expiry ON ${s}.sso_requests (expires_at)`,
  `CREATE TABLE ${s}.saml_assertions_seen (
     assertion_key bytea PRIMARY KEY,
     expires_at    timestamptz NOT NULL
   )`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.sso_requests, ${s}.saml_assertions_seen TO ${app}`,
]);
