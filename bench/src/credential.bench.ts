import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemEventContext, type Principal } from '@palisade/contracts';
import { createDataSource, ident, PgEventStore, pgPoolOf } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE } from '@palisade/testing';
import { ScopeAccessPolicy } from '@palisade/credential-service/dist/access/access-policy';
import { bindingContext, newDataKey, open, seal } from '@palisade/credential-service/dist/crypto/envelope';
import { keyProviders } from '@palisade/credential-service/dist/keys/key-provider';
import { LocalKeyProvider } from '@palisade/credential-service/dist/keys/local-key-provider';
import { RotatorRegistry } from '@palisade/credential-service/dist/rotation/rotator';
import { createCredentialServices } from '@palisade/credential-service/dist/credential.module';
import { DEFAULT_CREDENTIAL_SETTINGS } from '@palisade/credential-service/dist/credential.settings';
import { PostgresCiphertextStore } from '@palisade/credential-service/dist/storage/ciphertext-store';
import { vaultMigration } from '@palisade/credential-service/dist/vault.migration';
import { round, summarize } from './stats';

/**
 * credential: just-in-time leases through the vault IN PROCESS (the `LeasesService` and
 * `SecretsService`, as the HTTP controllers call them), over PostgreSQL with the local key provider.
 * HTTP, TLS and the mTLS redemption request are NOT included. Each lease is granted
 * (secret read for the access policy, then the lease row + `credential.lease.granted`
 * event) and redeemed (lease, secret version and KEK read, data key unwrapped, value
 * decrypted, then the lease use + `credential.secret.read` committed in one statement
 * before the value is returned). `CONCURRENCY` callers each run grant-then-redeem in a
 * loop, so that many leases are in flight; the vault group-commits what arrives together.
 * Next to it, bare AES-256-GCM decryption of the same sealed values with their data keys
 * in the same run, and the same values sealed with sm4 (`raw_decrypt_sm4_per_s`). Then the same at a light load (LIGHT_CONCURRENCY in flight), for the
 * latency of a lease that does not queue behind 63 others.
 * Baseline in the same run, at each concurrency: PostgreSQL's bare durable commits, as many
 * as a lease has (2: the grant, the redemption), each a single-row INSERT committing on its
 * own through the vault's pool, in slices alternating with the leases' (`raw_commit_pairs_per_s`; `lease_ratio` = leases over it;
 * `raw_light_pair_p50_ms` at the light load). The benchmark process's CPU per lease and per
 * raw pair (`node_cpu_us_per_*`: this process is the vault here, plus its callers' loops).
 */
const SECRETS = 200;
const LEASES = Number(process.env.BENCH_CREDENTIAL_LEASES ?? 20000);
const WARMUP = 2000;
/** Leases in flight (sandboxes running tools at once); 16 was the first version's figure. */
const CONCURRENCY = Number(process.env.BENCH_CREDENTIAL_CONCURRENCY ?? 64);
/** Leases in flight for the light-load latency figures. */
const LIGHT_CONCURRENCY = 4;
const TENANT = 'bench';
/** Slices of leases alternating with slices of the raw baseline. */
const SLICES = 4;
/** Group-commit lanes (the vault's default when unset). */
const LANES = process.env.BENCH_CREDENTIAL_LANES ? Number(process.env.BENCH_CREDENTIAL_LANES) : undefined;

export async function credentialBenchmark(): Promise<Record<string, number>> {
  const db = await createTestSchema('bench_cred');
  const keyDir = mkdtempSync(join(tmpdir(), 'palisade-bench-cred-'));
  const local = new LocalKeyProvider({ masterKeyFile: join(keyDir, 'master.key'), keystoreDir: join(keyDir, 'keys') });
  try {
    const migrator = createDataSource({ ...db.owner, poolSize: 1 }, [vaultMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    const rawTable = `${ident(db.schema)}.raw_commits`;
    await migrator.query(`CREATE TABLE ${rawTable} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), v text NOT NULL)`);
    await migrator.query(`GRANT SELECT, INSERT ON ${rawTable} TO ${ident(TEST_APP_ROLE)}`);
    await migrator.query(`GRANT USAGE ON SEQUENCE ${ident(db.schema)}.raw_commits_id_seq TO ${ident(TEST_APP_ROLE)}`);
    await migrator.destroy();
    const { secrets, leases: leaseService, repositories } = createCredentialServices({
      store: new PgEventStore(db.dataSource, db.schema),
      dataSource: () => db.dataSource,
      schema: db.schema,
      providers: keyProviders([local]),
      storage: new PostgresCiphertextStore(),
      policy: new ScopeAccessPolicy(),
      rotators: new RotatorRegistry([]),
      eventContext: systemEventContext('credential'),
      settings: { ...DEFAULT_CREDENTIAL_SETTINGS, leaseMaxUses: 1 },
      commitLanes: LANES,
    });
    const admin: Principal = { type: 'user', id: 'bench-admin', tenantId: TENANT, scopes: ['credential:admin'] };
    const agent: Principal = { type: 'agent', id: 'bench-agent', tenantId: TENANT, actingFor: 'bench-admin', scopes: ['credential:use'] };
    const ids: string[] = [];
    for (let i = 0; i < SECRETS; i++) {
      ids.push((await secrets.create(admin, { name: `s-${i}`, value: Buffer.from(randomBytes(30).toString('base64')), scopes: ['tool:gerrit'] })).id);
    }

    const leaseOnce = async (n: number) => {
      const lease = await leaseService.grant(agent, { secretId: ids[n % SECRETS], sessionId: `sbx-${n % 64}`, tool: 'gerrit' });
      await leaseService.redeem('sandbox-orchestrator', { token: lease.token, tenantId: TENANT, sessionId: lease.sessionId, tool: 'gerrit' });
    };
    const pool = pgPoolOf<{ query(sql: string, params: unknown[]): Promise<unknown> }>(db.dataSource);
    const commitPair = async (n: number) => {
      await pool.query(`INSERT INTO ${rawTable} (v) VALUES ($1)`, [`grant-${n}`]);
      await pool.query(`INSERT INTO ${rawTable} (v) VALUES ($1)`, [`redeem-${n}`]);
    };
    /** `count` runs of `once` with `concurrency` in flight: the rate, and latencies (samples appended to `latencies`). */
    const runLoop = async (count: number, concurrency: number, once: (n: number) => Promise<void>, latencies: number[] = []) => {
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            const n = next++;
            const t0 = performance.now();
            await once(n);
            latencies.push(performance.now() - t0);
          }
        }),
      );
      return { ms: performance.now() - start, latencies };
    };
    /**
     * Leases and the raw commit pairs in alternating slices (SLICES of each), so that a
     * neighbour's burst on the shared machine weighs on both sides of the ratio.
     */
    const alternate = async (leaseCount: number, rawCount: number, concurrency: number) => {
      const sides = { lease: { ms: 0, cpuUs: 0, latencies: [] as number[] }, raw: { ms: 0, cpuUs: 0, latencies: [] as number[] } };
      const slice = async (side: typeof sides.lease, count: number, once: (n: number) => Promise<void>) => {
        const cpu = process.cpuUsage();
        side.ms += (await runLoop(Math.ceil(count / SLICES), concurrency, once, side.latencies)).ms;
        const used = process.cpuUsage(cpu);
        side.cpuUs += used.user + used.system;
      };
      for (let i = 0; i < SLICES; i++) {
        await slice(sides.lease, leaseCount, leaseOnce);
        await slice(sides.raw, rawCount, commitPair);
      }
      const figures = (side: typeof sides.lease) => ({ perSecond: side.latencies.length / (side.ms / 1000), cpuUsPerUnit: side.cpuUs / side.latencies.length, ...summarize(side.latencies) });
      return { leases: figures(sides.lease), raw: figures(sides.raw) };
    };
    await runLoop(WARMUP, CONCURRENCY, leaseOnce);
    // Statistics, as autovacuum gathers them within a minute on a live database: this schema
    // is seconds old and has none, and without them PostgreSQL planned the lease statements
    // on the wrong indexes (every lease of the secret scanned for one lease id, every
    // version of the tenant for one secret): 2,290 and 2,414 leases/s against 3,834 and 4,031
    // with them, alternated (credential README, "A new database's plans").
    const owner = createDataSource({ ...db.owner, poolSize: 1 });
    await owner.initialize();
    for (const table of ['keyrings', 'kek_versions', 'secrets', 'secret_versions', 'leases', 'events']) await owner.query(`ANALYZE ${ident(db.schema)}.${table}`);
    await owner.destroy();
    const { leases, raw: rawPairs } = await alternate(LEASES, Math.min(LEASES, 10000), CONCURRENCY);
    // The same at a light load (a few tool executions at once): latency without queueing.
    const { leases: light, raw: rawLight } = await alternate(Math.min(LEASES, 5000), Math.min(LEASES, 2000), LIGHT_CONCURRENCY);

    // Bare AES-256-GCM decryption of the same values, with their data keys unwrapped beforehand.
    const ring = (await repositories.keyring.keyring(TENANT))!;
    const kek = ring.keys.find((k) => k.version === ring.currentVersion)!;
    const prepared = [];
    for (const id of ids) {
      const [m] = await repositories.secrets.versions(TENANT, id);
      const binding = { tenantId: TENANT, secretId: id, version: m.version };
      const dek = await local.unwrap(kek.keyRef, m.wrappedDek, bindingContext(binding, m.cipher));
      if (m.stored.storage !== 'postgres') throw new Error('expected ciphertext in PostgreSQL');
      prepared.push({ sealed: m.stored.sealed, dek, binding });
    }
    const rawCount = Math.max(LEASES * 10, 200000);
    const rawStart = performance.now();
    let bytes = 0;
    for (let i = 0; i < rawCount; i++) {
      const p = prepared[i % prepared.length];
      bytes += open(p.sealed, p.dek, p.binding).length;
    }
    const rawPerSecond = rawCount / ((performance.now() - rawStart) / 1000);
    if (bytes === 0) throw new Error('nothing decrypted');
    // The same values sealed with sm4 (SM4-CTR + HMAC-SM3, keys by HKDF-SM3) under fresh data keys, opened alike.
    const sm4Prepared = prepared.map((p) => {
      const dek = newDataKey('sm4');
      return { sealed: seal('sm4', dek, open(p.sealed, p.dek, p.binding), p.binding), dek, binding: p.binding };
    });
    const sm4Count = Math.max(LEASES * 2, 50000);
    const sm4Start = performance.now();
    for (let i = 0; i < sm4Count; i++) {
      const p = sm4Prepared[i % sm4Prepared.length];
      bytes += open(p.sealed, p.dek, p.binding).length;
    }
    const sm4PerSecond = sm4Count / ((performance.now() - sm4Start) / 1000);
    return {
      leases_per_s: round(leases.perSecond, 0),
      lease_p50_ms: round(leases.p50),
      lease_p99_ms: round(leases.p99),
      raw_decrypt_per_s: round(rawPerSecond, 0),
      raw_decrypt_sm4_per_s: round(sm4PerSecond, 0),
      raw_commit_pairs_per_s: round(rawPairs.perSecond, 0),
      lease_ratio: round(leases.perSecond / rawPairs.perSecond, 3),
      node_cpu_us_per_lease: round(leases.cpuUsPerUnit, 0),
      node_cpu_us_per_raw_pair: round(rawPairs.cpuUsPerUnit, 0),
      lease_concurrency: CONCURRENCY,
      light_leases_per_s: round(light.perSecond, 0),
      light_lease_p50_ms: round(light.p50),
      light_lease_p99_ms: round(light.p99),
      light_node_cpu_us_per_lease: round(light.cpuUsPerUnit, 0),
      raw_light_pair_p50_ms: round(rawLight.p50),
      raw_light_pair_p99_ms: round(rawLight.p99),
      light_concurrency: LIGHT_CONCURRENCY,
    };
  } finally {
    await local.close();
    await db.drop();
    rmSync(keyDir, { recursive: true, force: true });
  }
}
