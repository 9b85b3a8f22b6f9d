import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource, EVENT_STORE_MIGRATIONS, ident, type PgConnectionOptions } from '@palisade/postgres';
import { serviceDatabase, type ServiceName } from '@palisade/contracts';
import { infra } from './infra';

export const TEST_DATABASE = 'palisade_test';
export const TEST_OWNER = 'palisade_test_owner';
export const TEST_APP_ROLE = 'palisade_test';

export interface TestSchema {
  schema: string;
  /** Connection of the least-privilege application role. */
  app: PgConnectionOptions;
  /** Connection of the owner role (migrations). */
  owner: PgConnectionOptions;
  dataSource: DataSource;
  drop(): Promise<void>;
}

function connection(user: string, schema: string): PgConnectionOptions {
  return {
    host: infra('PGHOST'),
    port: Number(infra('PGPORT')),
    database: TEST_DATABASE,
    user,
    schema,
    applicationName: 'palisade-test',
    poolSize: 10,
  };
}

/**
 * A fresh schema in the test database with the event store migrated into it, and a
 * data source connected as the application role, as a service would be.
 */
export async function createTestSchema(prefix = 't'): Promise<TestSchema> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const owner = connection(TEST_OWNER, schema);
  const admin = new Client({ host: owner.host, port: owner.port, database: TEST_DATABASE, user: TEST_OWNER });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${ident(schema)}`);
  await admin.end();
  const migrator = createDataSource(owner, EVENT_STORE_MIGRATIONS.map((m) => m(schema, TEST_APP_ROLE)));
  await migrator.initialize();
  await migrator.runMigrations();
  await migrator.destroy();
  const app = connection(TEST_APP_ROLE, schema);
  const dataSource = createDataSource(app);
  await dataSource.initialize();
  return {
    schema,
    app,
    owner,
    dataSource,
    async drop() {
      await dataSource.destroy().catch(() => undefined);
      const c = new Client({ host: owner.host, port: owner.port, database: TEST_DATABASE, user: TEST_OWNER });
      await c.connect();
      // The event store refuses deletion row by row; dropping the whole schema is the owner's right.
      await c.query(`DROP SCHEMA ${ident(schema)} CASCADE`);
      await c.end();
    },
  };
}

/**
 * Terminate PostgreSQL backends as a failover or a network blip would: every backend of
 * `database` (other than this one), or only those whose application_name starts with
 * `applicationPrefix`. Returns how many were terminated.
 */
export async function terminateBackends(database: string, applicationPrefix?: string): Promise<number> {
  const admin = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'postgres', user: 'postgres' });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR starts_with(application_name, $2::text))`,
      [database, applicationPrefix ?? null],
    );
    return rows.filter((r: { ok: boolean }) => r.ok).length;
  } finally {
    await admin.end();
  }
}

/** Open or close `database` to new connections (ALTER DATABASE … ALLOW_CONNECTIONS), as an outage would. */
export async function allowConnections(database: string, allow: boolean): Promise<void> {
  const admin = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'postgres', user: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${ident(database)} WITH ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);
  } finally {
    await admin.end();
  }
}

/**
 * The rows of one query on a service's own database (`serviceDatabase`) as
 * its owner role: what e2e tests read of what a running service stored (its events).
 */
export async function queryServiceDatabase<T = Record<string, unknown>>(service: ServiceName, sql: string, params: unknown[] = []): Promise<T[]> {
  const database = serviceDatabase(service);
  const client = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database, user: `${database}_owner` });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}
