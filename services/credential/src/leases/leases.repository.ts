import type { EventEnvelope } from '@palisade/contracts';
import { eventsAppendedRinger, NOTIFY_AFTER_COMMIT_SETTING, preparedSql, type PreparedSql } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { CredentialRepository, kekOf, materialOf, secretOf, validateAll, type KekRow, type Row, type SecretRow, type VersionMaterial } from '../credential.repository';
import { GroupCommit } from './group-commit';

export interface LeaseRow {
  leaseId: string;
  tokenHash: Buffer;
  tenantId: string;
  secretId: string;
  sessionId: string;
  tool: string;
  expiresAt: Date;
  uses: number;
  usesLeft: number;
  grantedBy: string;
  createdAt: Date;
}

/** What a redemption reads besides the lease: its secret's current version material and the KEK that wraps it. */
export interface SecretMaterialRow {
  material: VersionMaterial | null;
  kek: KekRow | null;
}

/** What a redemption needs, read in one query: the lease, its secret's current version material and its KEK. */
export interface RedemptionRow extends Omit<LeaseRow, 'tokenHash' | 'grantedBy' | 'createdAt'>, SecretMaterialRow {
  secretState: string | null;
  version: number | null;
}

/** The secret a lease is asked for, with what its redemption will need (read by the grant in the same query). */
export type LeaseSecretRow = SecretRow & SecretMaterialRow;

export interface LeaseGrantWrite {
  lease: LeaseRow;
  event: EventEnvelope;
  /** The secret row's `stream_version` the grant was decided on: the lease is written only while the secret is still that row, active. */
  secretStreamVersion: number;
}

export interface LeaseRedeemWrite {
  leaseId: string;
  tenantId: string;
  secretId: string;
  /** The secret version read and decrypted, and the KEK version that wraps it. */
  version: number;
  kekVersion: number;
  now: Date;
  event: EventEnvelope;
}

/**
 * Leases (read model of `lease-<id>`) on the hot path. Below the four unit methods the
 * service calls (`secretForLease`, `findByToken`, `grant`, `redeem`) sits the group
 * commit: what arrives while earlier work is in flight is grouped, and each group is ONE
 * SQL statement on the `pg` pool (one round trip, one commit for the whole group).
 */
export class LeasesRepository extends CredentialRepository {
  private readonly grants: GroupCommit<LeaseGrantWrite, boolean>;
  private readonly redemptionsGroup: GroupCommit<LeaseRedeemWrite, number | undefined>;
  private readonly secretLookups: GroupCommit<{ tenantId: string; secretId: string }, LeaseSecretRow | undefined>;
  private readonly tokenLookups: GroupCommit<Buffer, RedemptionRow | undefined>;
  private readonly statements = new Map<string, PreparedSql>();

  /** `commitLanes`: grant and redemption groups that may commit at once (each on its own pooled connection). */
  constructor(dataSource: () => DataSource, schema: string, options: { commitLanes?: number } = {}) {
    super(dataSource, schema);
    const lanes = options.commitLanes ?? 2;
    this.grants = new GroupCommit({ commit: (units) => this.commitGrants(units), lanes });
    // Two redemptions of one lease never share a group nor run in two at once (no lock waits between groups).
    this.redemptionsGroup = new GroupCommit({ commit: (units) => this.commitRedemptions(units), keyOf: (w) => w.leaseId, lanes });
    this.secretLookups = new GroupCommit({ commit: (keys) => this.secretsByKey(keys), lanes: 2 });
    this.tokenLookups = new GroupCommit({ commit: (hashes) => this.redemptions(hashes), lanes: 2 });
  }

  /** The secret a lease is asked for, with its current version material and KEK (grouped read, no lock). */
  secretForLease(tenantId: string, secretId: string): Promise<LeaseSecretRow | undefined> {
    return this.secretLookups.run({ tenantId, secretId });
  }

  /** The lease with this token hash, with what its redemption needs (grouped read, no lock). */
  findByToken(tokenHash: Buffer): Promise<RedemptionRow | undefined> {
    return this.tokenLookups.run(tokenHash);
  }

  /**
   * The lease row and its `credential.lease.granted` event, committed (grouped) before this
   * resolves: true; false (nothing written) when the secret is no longer active at the
   * stream version the grant was decided on.
   */
  grant(write: LeaseGrantWrite): Promise<boolean> {
    return this.grants.run(write);
  }

  /** One use taken and its `credential.secret.read` recorded (grouped, synchronous commit): the use number, or undefined when refused. */
  redeem(write: LeaseRedeemWrite): Promise<number | undefined> {
    return this.redemptionsGroup.run(write);
  }

  /**
   * Secrets by (tenant, id), each with its current version material and KEK, one query for
   * a group of lookups (no lock); one answer per key, in order.
   */
  async secretsByKey(keys: ReadonlyArray<{ tenantId: string; secretId: string }>): Promise<Array<LeaseSecretRow | undefined>> {
    const { rows } = await this.prepared(
      `SELECT asked.ord, s.*, ${this.materialColumns}
         FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS asked(tenant_id, secret_id, ord)
         JOIN ${this.t.secrets} s ON s.tenant_id = asked.tenant_id AND s.secret_id = asked.secret_id
         ${this.materialJoins}
        WHERE s.state <> 'shredded'`,
      [keys.map((k) => k.tenantId), keys.map((k) => k.secretId)],
    );
    const byOrd = new Map(rows.map((r) => [Number(r.ord), { ...secretOf(r), ...secretMaterialOf(r) }]));
    return keys.map((_, i) => byOrd.get(i + 1));
  }

  /**
   * Leases by token hash, each with its secret's current version material and its KEK, in
   * one query for a group of redemptions (no lock); one answer per hash, in order.
   */
  async redemptions(tokenHashes: readonly Buffer[]): Promise<Array<RedemptionRow | undefined>> {
    const { rows } = await this.prepared(
      `SELECT h.ord, l.lease_id, l.tenant_id, l.secret_id, l.session_id, l.tool, l.expires_at, l.uses, l.uses_left,
              s.state AS secret_state, s.current_version, ${this.materialColumns}
         FROM unnest($1::bytea[]) WITH ORDINALITY AS h(token_hash, ord)
         JOIN ${this.t.leases} l ON l.token_hash = h.token_hash
         LEFT JOIN ${this.t.secrets} s ON s.tenant_id = l.tenant_id AND s.secret_id = l.secret_id
         ${this.materialJoins}`,
      [tokenHashes],
    );
    const byOrd = new Map(rows.map((r) => [Number(r.ord), r]));
    return tokenHashes.map((_, i) => {
      const r = byOrd.get(i + 1);
      if (!r) return undefined;
      return {
        leaseId: r.lease_id as string,
        tenantId: r.tenant_id as string,
        secretId: r.secret_id as string,
        sessionId: r.session_id as string,
        tool: r.tool as string,
        expiresAt: r.expires_at as Date,
        uses: r.uses as number,
        usesLeft: r.uses_left as number,
        secretState: (r.secret_state as string | null) ?? null,
        version: (r.v_version as number | null) ?? null,
        ...secretMaterialOf(r),
      };
    });
  }

  /** The current version (`v_…`) and its KEK (`k_…`) of the secret `s`, as `secretMaterialOf` reads them. */
  private readonly materialColumns = `v.version AS v_version, v.cipher AS v_cipher, v.kek_version AS v_kek_version, v.wrapped_dek AS v_wrapped_dek,
              v.storage AS v_storage, v.iv AS v_iv, v.tag AS v_tag, v.ciphertext AS v_ciphertext, v.external_ref AS v_external_ref,
              v.created_at AS v_created_at,
              k.version AS k_version, k.provider AS k_provider, k.origin AS k_origin, k.key_ref AS k_key_ref, k.state AS k_state`;

  private get materialJoins(): string {
    return `LEFT JOIN ${this.t.versions} v ON v.tenant_id = s.tenant_id AND v.secret_id = s.secret_id AND v.version = s.current_version
         LEFT JOIN ${this.t.kek} k ON k.tenant_id = s.tenant_id AND k.version = v.kek_version`;
  }

  /**
   * Commits a group of lease grants in ONE statement (one transaction, one commit, on the
   * lean pool): each lease row with its `credential.lease.granted` event (stream version 1),
   * committed synchronously like every event (a grant acknowledged to its caller survives a
   * database crash; an asynchronous commit was measured to gain nothing beyond the noise
   * here: 1,595–1,701 leases/s asynchronous, 1,513–1,703 synchronous). A grant is written
   * only while its secret is active at the stream version the grant was decided on (the
   * row the access policy and the decider saw; every change of a secret moves its stream
   * version), so the service may decide on a secret row it read for an earlier lease: a
   * grant refused here is decided again on a fresh read. Answers, per grant in order,
   * whether it was written. Any error fails the whole group, which commits nothing.
   */
  async commitGrants(grants: readonly LeaseGrantWrite[]): Promise<boolean[]> {
    validateAll(grants.map((w) => w.event));
    const { rows } = await this.prepared(
      `WITH g AS (
         SELECT g.*, set_config('${NOTIFY_AFTER_COMMIT_SETTING}', 'on', true) AS notify_after_commit
           FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::int[], $9::text[],
                       $10::timestamptz[], $11::uuid[], $12::text[], $13::jsonb[], $14::int[])
           WITH ORDINALITY AS g(lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, granted_by, created_at, event_id, event_type,
                                envelope, secret_stream_version, ord)
       ), decided AS (
         SELECT g.* FROM g
           JOIN ${this.t.secrets} s ON s.tenant_id = g.tenant_id AND s.secret_id = g.secret_id
          WHERE s.state = 'active' AND s.stream_version = g.secret_stream_version
       ), granted AS (
         INSERT INTO ${this.t.leases} (lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, uses_left, granted_by, created_at)
         SELECT lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, uses, granted_by, created_at FROM decided
         RETURNING lease_id
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'lease-' || lease_id, 1, event_id, event_type, tenant_id, envelope FROM decided
         RETURNING stream_id
       )
       SELECT ord FROM decided`,
      [
        grants.map((w) => w.lease.leaseId),
        grants.map((w) => w.lease.tokenHash),
        grants.map((w) => w.lease.tenantId),
        grants.map((w) => w.lease.secretId),
        grants.map((w) => w.lease.sessionId),
        grants.map((w) => w.lease.tool),
        grants.map((w) => w.lease.expiresAt),
        grants.map((w) => w.lease.uses),
        grants.map((w) => w.lease.grantedBy),
        grants.map((w) => w.lease.createdAt),
        grants.map((w) => w.event.id),
        grants.map((w) => w.event.type),
        grants.map((w) => JSON.stringify(w.event)),
        grants.map((w) => w.secretStreamVersion),
      ],
    );
    this.ring();
    const written = new Set(rows.map((r: Row) => Number(r.ord)));
    return grants.map((_, i) => written.has(i + 1));
  }

  /**
   * Commits a group of redemptions in ONE statement (one transaction, one synchronous
   * commit, on the lean pool). The rules were decided in `leases.decider.ts` (their only
   * source); this statement re-checks, atomically and for concurrency only, the conditions
   * that may have changed since that decision: each redemption takes one use of its lease
   * only while the lease is unexpired and has uses left, its secret is active at the
   * version read and the KEK that wraps that version is neither revoked nor retired, and
   * appends its `credential.secret.read` event at stream version 1 + n (n the use taken)
   * in the same statement: no use without its record, no record without its use. The
   * secret and KEK rows are share-locked, so a revocation, rotation or retirement waits
   * for the statement, and a redemption queued behind one re-checks the new row (the KEK
   * row is locked too: PostgreSQL re-reads only locked rows then). A lease appears at most
   * once per group (the group commit ensures it). Answers, per redemption in order, the
   * use number, or undefined when refused. Any error fails the whole group, which commits
   * nothing.
   */
  async commitRedemptions(redeems: readonly LeaseRedeemWrite[]): Promise<Array<number | undefined>> {
    validateAll(redeems.map((w) => w.event));
    const { rows } = await this.prepared(
      `WITH r AS (
         SELECT r.*, set_config('${NOTIFY_AFTER_COMMIT_SETTING}', 'on', true) AS notify_after_commit
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int[], $5::int[], $6::timestamptz[], $7::uuid[], $8::text[], $9::jsonb[])
           WITH ORDINALITY AS r(lease_id, tenant_id, secret_id, version, kek_version, at, event_id, event_type, envelope, ord)
       ), live AS (
         SELECT r.ord FROM r
           JOIN ${this.t.secrets} s ON s.tenant_id = r.tenant_id AND s.secret_id = r.secret_id
           JOIN ${this.t.kek} k ON k.tenant_id = r.tenant_id AND k.version = r.kek_version
          WHERE s.state = 'active' AND s.current_version = r.version AND k.state IN ('active', 'retiring')
          FOR SHARE OF s, k
       ), used AS (
         UPDATE ${this.t.leases} l SET uses_left = l.uses_left - 1
           FROM r JOIN live ON live.ord = r.ord
          WHERE l.lease_id = r.lease_id AND l.tenant_id = r.tenant_id AND l.secret_id = r.secret_id AND l.uses_left > 0 AND l.expires_at > r.at
         RETURNING r.ord, l.lease_id, l.uses - l.uses_left AS n
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'lease-' || u.lease_id, 1 + u.n, r.event_id, r.event_type, r.tenant_id, r.envelope FROM used u JOIN r ON r.ord = u.ord
         RETURNING stream_id
       )
       SELECT ord, n FROM used`,
      [
        redeems.map((w) => w.leaseId),
        redeems.map((w) => w.tenantId),
        redeems.map((w) => w.secretId),
        redeems.map((w) => w.version),
        redeems.map((w) => w.kekVersion),
        redeems.map((w) => w.now),
        redeems.map((w) => w.event.id),
        redeems.map((w) => w.event.type),
        redeems.map((w) => JSON.stringify(w.event)),
      ],
    );
    this.ring();
    const uses = new Map<number, number>(rows.map((r: Row) => [Number(r.ord), r.n as number]));
    return redeems.map((_, i) => uses.get(i + 1));
  }

  /**
   * One of the lease path's four statements, as a named prepared statement: parsed and
   * planned once per pooled connection instead of at every group (`preparedSql`: the name
   * is derived from the text, so two vaults over different schemas never share one).
   */
  private prepared(text: string, values: unknown[]): Promise<{ rows: Row[] }> {
    let statement = this.statements.get(text);
    if (!statement) this.statements.set(text, (statement = preparedSql(text)));
    return this.pool().query({ ...statement, values });
  }

  /**
   * Wakes the outbox relay after a lease statement committed: those statements do not
   * NOTIFY inside their transaction (NOTIFY_AFTER_COMMIT_SETTING), so that their commit never
   * waits for the cluster's notifying commits; the pool's shared ringer notifies once
   * committed, off the caller's path, coalesced with the event store's appends.
   */
  private ring(): void {
    eventsAppendedRinger(this.pool()).ring();
  }

  /** Deletes leases that expired before `before`; answers how many. */
  async purgeExpired(before: Date): Promise<number> {
    const rows: Row[] = await this.dataSource.query(`WITH gone AS (DELETE FROM ${this.t.leases} WHERE expires_at <= $1 RETURNING lease_id) SELECT lease_id FROM gone`, [before]);
    return rows.length;
  }
}

/** The current version material and its KEK from a row with `v_…` and `k_…` columns (null when missing). */
function secretMaterialOf(r: Row): SecretMaterialRow {
  return {
    material: r.v_version === null ? null : materialOf(r, 'v_'),
    kek: r.k_version === null ? null : kekOf({ tenant_id: r.tenant_id, version: r.k_version, provider: r.k_provider, origin: r.k_origin, key_ref: r.k_key_ref, state: r.k_state }),
  };
}
