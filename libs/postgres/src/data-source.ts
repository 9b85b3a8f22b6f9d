import { DataSource, type MigrationInterface } from 'typeorm';
import type { ClientConfig, Pool } from 'pg';

export interface PgConnectionOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** Schema that holds the service's tables. */
  schema: string;
  /** Shown in pg_stat_activity: which service and role holds a connection. */
  applicationName: string;
  poolSize?: number;
  /** PEM CA for TLS to PostgreSQL (verify-full); plain TCP when absent. */
  sslCaPem?: string;
}

/** Quote an SQL identifier (schema names come from configuration, not users). */
export function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid SQL identifier: ${name}`);
  return `"${name}"`;
}

export function pgClientConfig(options: PgConnectionOptions): ClientConfig {
  return {
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.user,
    ...(options.password ? { password: options.password } : {}),
    application_name: options.applicationName,
    ...(options.sslCaPem ? { ssl: { ca: options.sslCaPem, rejectUnauthorized: true } } : {}),
    options: `-c search_path=${ident(options.schema)}`,
  };
}

/**
 * Settings for a long-lived client (event tails, relays, listeners): a bounded connect,
 * TCP keep-alive so a silently dropped peer is noticed, and a bounded query, so that a
 * broken connection always surfaces as an error its owner reconnects after.
 */
export function longLivedClientConfig(options: PgConnectionOptions): ClientConfig {
  return { ...pgClientConfig(options), connectionTimeoutMillis: 5000, keepAlive: true, query_timeout: 30000 };
}

/** A TypeORM data source over node-postgres; migrations run only when asked. */
export function createDataSource(
  options: PgConnectionOptions,
  migrations: Array<new () => MigrationInterface> = [],
): DataSource {
  const client = pgClientConfig(options);
  return new DataSource({
    type: 'postgres',
    host: options.host,
    port: options.port,
    database: options.database,
    username: options.user,
    ...(options.password ? { password: options.password } : {}),
    applicationName: options.applicationName,
    schema: options.schema,
    ...(options.sslCaPem ? { ssl: { ca: options.sslCaPem, rejectUnauthorized: true } } : {}),
    poolSize: options.poolSize ?? 5,
    extra: { options: client.options, max: options.poolSize ?? 5 },
    migrations,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
  });
}

/**
 * The pg pool under a TypeORM data source, for the few hot paths that run one statement
 * without TypeORM's query runner (group commits, refresh-token rotation).
 */
export function pgPoolOf<P = Pool>(dataSource: DataSource): P {
  return (dataSource.driver as unknown as { master: P }).master;
}
