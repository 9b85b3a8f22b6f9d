import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import { PalisadeError } from '@palisade/contracts';
import { EARLIEST_INDEX_MS } from '../validation';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Filters of the record index, with the tenant already decided by access.ts. */
export interface RecordFilter {
  /** undefined: every tenant (platform auditor only). */
  tenantId: string | undefined;
  /** Matches nothing (another tenant's records, asked for by a tenant auditor). */
  nothing?: true;
  from?: string;
  to?: string;
  actorId?: string;
  actionClasses?: readonly string[];
  types?: readonly string[];
  subjectId?: string;
}

export interface IndexedRecord {
  partition: number;
  seq: number;
  occurredAt: string;
  eventId: string;
  value: string;
}

/** Position after the last row of a page: (occurred_at, event_id), opaque to clients. */
export function encodeCursor(r: { occurredAt: string; eventId: string }): string {
  return Buffer.from(JSON.stringify([r.occurredAt, r.eventId]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { occurredAt: string; eventId: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(decoded) && decoded.length === 2) {
      const [occurredAt, eventId] = decoded as [unknown, unknown];
      if (typeof occurredAt === 'string' && RFC3339_UTC_MS.test(occurredAt) && Date.parse(occurredAt) >= EARLIEST_INDEX_MS && typeof eventId === 'string' && UUID.test(eventId)) return { occurredAt, eventId };
    }
  } catch {
    // fall through
  }
  throw new PalisadeError('validation', 'query cursor: not a cursor this service issued');
}

/** Queries over the record index (ingest.migration.ts, audit_records). Read only. */
export class QueryRepository {
  constructor(private readonly table: string) {}

  /**
   * One page after `after`: in (occurred_at, event_id) order for queries (`time`), or in
   * (partition, seq) order for NDJSON exports (`chain`), so each chain reads in order.
   */
  async page(
    tx: Transaction,
    topic: string,
    f: RecordFilter,
    after: { occurredAt: string; eventId: string } | { partition: number; seq: number } | undefined,
    limit: number,
    order: 'time' | 'chain',
  ): Promise<IndexedRecord[]> {
    if (f.nothing) return [];
    const where = ['topic = $1'];
    const params: unknown[] = [topic];
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (f.tenantId !== undefined) add((n) => `tenant_id = ${n}`, f.tenantId);
    if (f.from) add((n) => `occurred_at >= ${n}::timestamptz`, f.from);
    if (f.to) add((n) => `occurred_at < ${n}::timestamptz`, f.to);
    if (f.actorId) add((n) => `actor_id = ${n}`, f.actorId);
    if (f.actionClasses) add((n) => `action_class = ANY(${n}::text[])`, f.actionClasses);
    if (f.types) add((n) => `event_type = ANY(${n}::text[])`, f.types);
    if (f.subjectId) add((n) => `subject_id = ${n}`, f.subjectId);
    if (after && 'eventId' in after) {
      params.push(after.occurredAt, after.eventId);
      where.push(`(occurred_at, event_id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    } else if (after) {
      params.push(after.partition, after.seq);
      where.push(`(partition, seq) > ($${params.length - 1}::int, $${params.length}::bigint)`);
    }
    params.push(limit);
    const orderBy = order === 'time' ? 'occurred_at, event_id' : 'partition, seq';
    const rows: Array<{ partition: number; seq_text: string; occurred_at: Date; event_id: string; value: string }> = await sqlOf(tx).query(
      `SELECT partition, seq::text AS seq_text, occurred_at, event_id::text AS event_id, value FROM ${this.table}
        WHERE ${where.join(' AND ')} ORDER BY ${orderBy} LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({ partition: r.partition, seq: Number(r.seq_text), occurredAt: r.occurred_at.toISOString(), eventId: r.event_id, value: r.value }));
  }

  /** Every key the subject's records are sealed under (its own, or its tenant's shared one). */
  async keyIdsOfSubject(tx: Transaction, topic: string, subjectId: string): Promise<string[]> {
    const rows: Array<{ key_id: string }> = await sqlOf(tx).query(
      `SELECT DISTINCT key_id::text FROM ${this.table} WHERE topic = $1 AND subject_id = $2 AND key_id IS NOT NULL`,
      [topic, subjectId],
    );
    return rows.map((r) => r.key_id);
  }

  /** The tenants whose records name a data subject (erasure access). */
  async tenantsOfSubject(tx: Transaction, topic: string, subjectId: string): Promise<string[]> {
    const rows: Array<{ tenant_id: string }> = await sqlOf(tx).query(`SELECT DISTINCT tenant_id FROM ${this.table} WHERE topic = $1 AND subject_id = $2`, [topic, subjectId]);
    return rows.map((r) => r.tenant_id);
  }
}
