import { randomUUID } from 'node:crypto';
import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface StoredSubjectKey {
  keyId: string;
  subjectId: string;
  /** null once erased. */
  wrapped: Buffer | null;
}

/** The latest erasure of a data subject: the key it destroyed last, and when. */
export interface SubjectErasure {
  keyId: string;
  erasedAt: Date;
}

/** A live key, with the latest erasure of its subject (none: never erased). */
export type LiveSubjectKey = StoredSubjectKey & { lastErasure?: SubjectErasure };

/** Per-data-subject keys, wrapped by the KEK (ingest.migration.ts, audit_subject_keys). */
export class SubjectKeysRepository {
  constructor(private readonly table: string) {}

  /**
   * The live key of each subject, creating one (from `wrapNew`) for subjects that have
   * none, with the subject's latest erasure (`lastErasure`: the key destroyed last and
   * when), so that data produced before it is not sealed under the new key.
   */
  async liveKeys(tx: Transaction, subjectIds: readonly string[], wrapNew: (keyId: string) => Buffer): Promise<Map<string, LiveSubjectKey>> {
    if (subjectIds.length === 0) return new Map();
    const read = async () => {
      const rows: Array<{ key_id: string; subject_id: string; wrapped_key: Buffer; erased_key_id: string | null; erased_at: Date | string | null }> = await sqlOf(tx).query(
        `SELECT k.key_id::text, k.subject_id, k.wrapped_key, e.key_id::text AS erased_key_id, e.erased_at
           FROM ${this.table} k
           LEFT JOIN LATERAL (
             SELECT x.key_id, x.erased_at FROM ${this.table} x
              WHERE x.subject_id = k.subject_id AND x.erased_at IS NOT NULL
              ORDER BY x.erased_at DESC, x.key_id DESC LIMIT 1
           ) e ON true
          WHERE k.subject_id = ANY($1::text[]) AND k.erased_at IS NULL`,
        [subjectIds],
      );
      return new Map(
        rows.map((r): [string, LiveSubjectKey] => [
          r.subject_id,
          {
            keyId: r.key_id,
            subjectId: r.subject_id,
            wrapped: r.wrapped_key,
            ...(r.erased_key_id && r.erased_at ? { lastErasure: { keyId: r.erased_key_id, erasedAt: new Date(r.erased_at) } } : {}),
          },
        ]),
      );
    };
    const found = await read();
    const missing = subjectIds.filter((s) => !found.has(s));
    if (missing.length === 0) return found;
    const keyIds = missing.map(() => randomUUID());
    await sqlOf(tx).query(
      `INSERT INTO ${this.table} (key_id, subject_id, wrapped_key)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
       ON CONFLICT (subject_id) WHERE erased_at IS NULL DO NOTHING`,
      [keyIds, missing, keyIds.map((id) => wrapNew(id))],
    );
    return read();
  }

  /** Keys by id, erased ones included (wrapped = null). */
  async byIds(tx: Transaction, keyIds: readonly string[]): Promise<Map<string, StoredSubjectKey>> {
    if (keyIds.length === 0) return new Map();
    const rows: Array<{ key_id: string; subject_id: string; wrapped_key: Buffer | null }> = await sqlOf(tx).query(
      `SELECT key_id::text, subject_id, wrapped_key FROM ${this.table} WHERE key_id = ANY($1::uuid[])`,
      [keyIds],
    );
    return new Map(rows.map((r) => [r.key_id, { keyId: r.key_id, subjectId: r.subject_id, wrapped: r.wrapped_key }]));
  }

  /** Destroy these keys (by id) if still live; returns how many were destroyed. */
  async eraseKeys(tx: Transaction, keyIds: readonly string[]): Promise<number> {
    if (keyIds.length === 0) return 0;
    const rows: unknown[] = await sqlOf(tx).query(
      `UPDATE ${this.table} SET wrapped_key = NULL, erased_at = now() WHERE key_id = ANY($1::uuid[]) AND erased_at IS NULL RETURNING key_id`,
      [keyIds],
    );
    return Array.isArray(rows[0]) ? (rows[0] as unknown[]).length : rows.length;
  }

  /** Destroy every key of the subject; returns how many were destroyed. */
  async erase(tx: Transaction, subjectId: string): Promise<number> {
    const rows: unknown[] = await sqlOf(tx).query(
      `UPDATE ${this.table} SET wrapped_key = NULL, erased_at = now() WHERE subject_id = $1 AND erased_at IS NULL RETURNING key_id`,
      [subjectId],
    );
    return Array.isArray(rows[0]) ? (rows[0] as unknown[]).length : rows.length;
  }
}
