import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { SERVICE_NAMES, serviceDatabase } from '@palisade/contracts';
import { infra } from '@palisade/testing';

// The databases and roles deploy/postgres/init-databases.sh made (deploy/local/up.sh runs
// it): each application role reaches its own database only, reads and appends what the
// owner's migrations create, and changes nothing else.
async function connect(user: string, database: string): Promise<Client> {
  const client = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), user, database });
  await client.connect();
  return client;
}

async function refused(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'accepted',
    (e: Error) => e.message,
  );
}

describe('Palisade databases and roles', () => {
  it.each([...SERVICE_NAMES.map(serviceDatabase), 'palisade_test'])('%s: the owner owns the database and schema palisade', async (db) => {
    const admin = await connect(infra('PG_SUPERUSER'), db);
    try {
      const { rows } = await admin.query(
        `SELECT pg_get_userbyid(d.datdba) AS db_owner, pg_get_userbyid(n.nspowner) AS schema_owner,
                has_database_privilege('public', d.datname, 'CONNECT') AS public_connect,
                has_schema_privilege('public', 'public', 'CREATE') AS public_create
           FROM pg_database d, pg_namespace n WHERE d.datname = current_database() AND n.nspname = 'palisade'`,
      );
      expect(rows).toEqual([{ db_owner: `${db}_owner`, schema_owner: `${db}_owner`, public_connect: false, public_create: false }]);
    } finally {
      await admin.end();
    }
  });

  it('the application role reads and appends what the owner creates, and nothing more', async () => {
    const table = `roles_spec_${randomBytes(4).toString('hex')}`;
    const owner = await connect('palisade_test_owner', 'palisade_test');
    const app = await connect('palisade_test', 'palisade_test');
    try {
      await owner.query(`CREATE TABLE palisade.${table} (id bigserial PRIMARY KEY, v text NOT NULL)`);
      // search_path is the schema palisade for both roles.
      await app.query(`INSERT INTO ${table} (v) VALUES ('appended')`);
      expect((await app.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: 'appended' }]);
      expect(await refused(app.query(`UPDATE ${table} SET v = 'changed'`))).toMatch(/permission denied for table/);
      expect(await refused(app.query(`DELETE FROM ${table}`))).toMatch(/permission denied for table/);
      expect(await refused(app.query(`TRUNCATE ${table}`))).toMatch(/permission denied for table/);
      expect(await refused(app.query(`CREATE TABLE palisade.${table}_x (i int)`))).toMatch(/permission denied for schema palisade/);
      expect(await refused(app.query(`CREATE TABLE public.${table}_x (i int)`))).toMatch(/permission denied for schema public/);
      expect(await refused(app.query(`CREATE TEMP TABLE ${table}_t (i int)`))).toMatch(/permission denied to create temporary tables/);
    } finally {
      await owner.query(`DROP TABLE IF EXISTS palisade.${table}`);
      await Promise.all([owner.end(), app.end()]);
    }
  });

  it('no role connects to another service database', async () => {
    expect(await refused(connect('palisade_test', 'palisade_auth'))).toMatch(/permission denied for database "palisade_auth"/);
    expect(await refused(connect('palisade_audit', 'palisade_credential'))).toMatch(/permission denied for database "palisade_credential"/);
    expect(await refused(connect('palisade_billing_owner', 'palisade_policy'))).toMatch(/permission denied for database "palisade_policy"/);
    const own = await connect('palisade_audit', 'palisade_audit');
    await own.end();
  });
});
