import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemEventContext, type Principal } from '@palisade/contracts';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, infra, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ScopeAccessPolicy } from '../../src/access/access-policy';
import { keyProviders, type KeyProvider } from '../../src/keys/key-provider';
import { LocalKeyProvider } from '../../src/keys/local-key-provider';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11-key-provider';
import { RandomTokenRotator, RotatorRegistry } from '../../src/rotation/rotator';
import { PostgresCiphertextStore, type CiphertextStore } from '../../src/storage/ciphertext-store';
import { createCredentialServices, type CredentialRepositories, type CredentialServices } from '../../src/credential.module';
import { DEFAULT_CREDENTIAL_SETTINGS, type CredentialSettings } from '../../src/credential.settings';
import { vaultMigration } from '../../src/vault.migration';

export const ADMIN_SCOPES = ['credential:admin', 'credential:use'];

export const admin = (tenantId: string, id = 'u-admin'): Principal => ({ type: 'user', id, tenantId, scopes: ADMIN_SCOPES });
export const agent = (tenantId: string, id = 'agent-1'): Principal => ({ type: 'agent', id, tenantId, actingFor: 'u-1', scopes: ['credential:use', 'credential:read'] });

export const SETTINGS: CredentialSettings = { ...DEFAULT_CREDENTIAL_SETTINGS, defaultOverlapSeconds: 3600 };

export interface Harness extends Omit<CredentialServices, 'repositories'> {
  db: TestSchema;
  repos: CredentialRepositories;
  store: PgEventStore;
  local: LocalKeyProvider;
  keyDir: string;
  clock: { now: Date };
  close(): Promise<void>;
}

/** A vault over a throw-away schema (event store + vault tables), as the app role. */
export async function startVault(options: { providers?: KeyProvider[]; storage?: CiphertextStore; settings?: Partial<CredentialSettings> } = {}): Promise<Harness> {
  const db = await createTestSchema('cred');
  const migrator = createDataSource({ ...db.owner, poolSize: 1 }, [vaultMigration(db.schema, TEST_APP_ROLE)]);
  await migrator.initialize();
  await migrator.runMigrations();
  await migrator.destroy();
  const keyDir = mkdtempSync(join(tmpdir(), 'palisade-vault-'));
  const local = new LocalKeyProvider({ masterKeyFile: join(keyDir, 'master.key'), keystoreDir: join(keyDir, 'keys') });
  const store = new PgEventStore(db.dataSource, db.schema);
  const clock = { now: new Date() };
  const providers = keyProviders([local, ...(options.providers ?? [])]);
  const { repositories, ...services } = createCredentialServices({
    store,
    dataSource: () => db.dataSource,
    schema: db.schema,
    providers,
    storage: options.storage ?? new PostgresCiphertextStore(),
    policy: new ScopeAccessPolicy(),
    rotators: new RotatorRegistry([new RandomTokenRotator()]),
    eventContext: systemEventContext('credential'),
    settings: { ...SETTINGS, ...options.settings },
    clock: () => clock.now,
  });
  return {
    ...services,
    db,
    repos: repositories,
    store,
    local,
    keyDir,
    clock,
    async close() {
      await providers.closeAll();
      await db.drop();
      rmSync(keyDir, { recursive: true, force: true });
    },
  };
}

export function softHsm(): Pkcs11KeyProvider {
  process.env.SOFTHSM2_CONF ??= infra('SOFTHSM2_CONF');
  return new Pkcs11KeyProvider({ library: infra('PKCS11_LIBRARY'), tokenLabel: infra('PKCS11_TOKEN_LABEL'), pinFile: infra('PKCS11_PIN_FILE') });
}

/** Every event of the schema's event store, as JSON text (for leak searches). */
export async function eventStoreText(h: Harness): Promise<string> {
  const rows: Array<{ envelope: unknown }> = await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events ORDER BY global_position`);
  return rows.map((r) => JSON.stringify(r.envelope)).join('\n');
}
