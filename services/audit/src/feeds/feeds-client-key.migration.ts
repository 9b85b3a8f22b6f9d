import { sqlMigration } from '@palisade/postgres';

/** Syslog feeds may present a client certificate (mutual TLS); its private key is stored only wrapped by the KEK. */
export const feedsClientKeyMigration = sqlMigration('AuditFeedsClientKey1763810000000', (s) => [
  // Table-level SELECT and INSERT of the application role cover the new column.
  `ALTER TABLE ${s}.audit_feeds ADD COLUMN wrapped_client_key bytea`,
]);
