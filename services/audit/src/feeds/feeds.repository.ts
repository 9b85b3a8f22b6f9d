import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { FeedFormat } from './feed-format';

export type FeedKind = 'splunk-hec' | 'syslog';

export interface HecSettings {
  url: string;
  index?: string;
  sourcetype?: string;
  caPem?: string;
}

export interface SyslogSettings {
  host: string;
  port: number;
  caPem?: string;
  /** Client certificate for mutual TLS (its key: Feed.wrappedClientKey). */
  clientCertPem?: string;
  appName: string;
  hostname?: string;
}

export interface Feed {
  id: string;
  tenantId: string;
  kind: FeedKind;
  format: FeedFormat;
  settings: HecSettings | SyslogSettings;
  /** The HEC token wrapped by the KEK (associated data names the feed). */
  wrappedToken: Buffer | null;
  /** A syslog feed's client private key (PKCS#8 PEM) wrapped by the KEK. */
  wrappedClientKey: Buffer | null;
  paused: boolean;
  createdAt: string;
  lastDeliveredAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export interface FeedCursor {
  topic: string;
  partition: number;
  nextOffset: bigint;
  updatedAt: string;
}

interface FeedRow {
  id: string;
  tenant_id: string;
  kind: FeedKind;
  format: FeedFormat;
  settings: HecSettings | SyslogSettings;
  wrapped_token: Buffer | null;
  wrapped_client_key: Buffer | null;
  paused: boolean;
  created_at: Date;
  last_delivered_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const feedOf = (r: FeedRow): Feed => ({
  id: r.id,
  tenantId: r.tenant_id,
  kind: r.kind,
  format: r.format,
  settings: r.settings,
  wrappedToken: r.wrapped_token,
  wrappedClientKey: r.wrapped_client_key,
  paused: r.paused,
  createdAt: r.created_at.toISOString(),
  lastDeliveredAt: iso(r.last_delivered_at),
  lastError: r.last_error,
  lastErrorAt: iso(r.last_error_at),
});

const COLUMNS = 'id::text, tenant_id, kind, format, settings, wrapped_token, wrapped_client_key, paused, created_at, last_delivered_at, last_error, last_error_at';

/** Feeds and their cursors in PostgreSQL. Every method takes the transaction to use. */
export class FeedsRepository {
  private readonly feeds: string;
  private readonly cursors: string;

  constructor(schema: string) {
    this.feeds = `${schema}.audit_feeds`;
    this.cursors = `${schema}.audit_feed_cursors`;
  }

  async insert(tx: Transaction, feed: Pick<Feed, 'id' | 'tenantId' | 'kind' | 'format' | 'settings' | 'wrappedToken' | 'wrappedClientKey'>, start: ReadonlyArray<{ topic: string; partition: number; offset: bigint }>): Promise<void> {
    await sqlOf(tx).query(
      `INSERT INTO ${this.feeds} (id, tenant_id, kind, format, settings, wrapped_token, wrapped_client_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [feed.id, feed.tenantId, feed.kind, feed.format, JSON.stringify(feed.settings), feed.wrappedToken, feed.wrappedClientKey],
    );
    if (start.length === 0) return;
    await sqlOf(tx).query(
      `INSERT INTO ${this.cursors} (feed_id, topic, partition, next_offset) SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])`,
      [feed.id, start.map((s) => s.topic), start.map((s) => s.partition), start.map((s) => s.offset.toString())],
    );
  }

  /** A live feed; with `tenantId`, only that tenant's (another tenant's feed does not exist). */
  async get(tx: Transaction, id: string, tenantId?: string): Promise<Feed | undefined> {
    const rows: FeedRow[] = await sqlOf(tx).query(
      `SELECT ${COLUMNS} FROM ${this.feeds} WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)`,
      [id, tenantId ?? null],
    );
    return rows[0] ? feedOf(rows[0]) : undefined;
  }

  async list(tx: Transaction, tenantId?: string): Promise<Feed[]> {
    const rows: FeedRow[] = await sqlOf(tx).query(
      `SELECT ${COLUMNS} FROM ${this.feeds} WHERE deleted_at IS NULL AND ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at, id`,
      [tenantId ?? null],
    );
    return rows.map(feedOf);
  }

  async markDeleted(tx: Transaction, id: string): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.feeds} SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, [id]);
  }

  async setPaused(tx: Transaction, id: string, paused: boolean): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.feeds} SET paused = $2 WHERE id = $1 AND deleted_at IS NULL`, [id, paused]);
  }

  async cursorsOf(tx: Transaction, feedId: string): Promise<FeedCursor[]> {
    const rows: Array<{ topic: string; partition: number; next_offset: string; updated_at: Date }> = await sqlOf(tx).query(
      `SELECT topic, partition, next_offset::text, updated_at FROM ${this.cursors} WHERE feed_id = $1 ORDER BY topic, partition`,
      [feedId],
    );
    return rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: BigInt(r.next_offset), updatedAt: r.updated_at.toISOString() }));
  }

  /** Move a cursor forward after an acknowledged delivery (never back); `delivered` also stamps the feed. */
  async advance(tx: Transaction, feedId: string, topic: string, partition: number, nextOffset: bigint, delivered: boolean): Promise<void> {
    await sqlOf(tx).query(
      `INSERT INTO ${this.cursors} AS c (feed_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
       ON CONFLICT (feed_id, topic, partition) DO UPDATE SET next_offset = GREATEST(c.next_offset, EXCLUDED.next_offset), updated_at = now()`,
      [feedId, topic, partition, nextOffset.toString()],
    );
    if (delivered) await sqlOf(tx).query(`UPDATE ${this.feeds} SET last_delivered_at = now() WHERE id = $1`, [feedId]);
  }

  async recordError(tx: Transaction, feedId: string, error: string): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.feeds} SET last_error = $2, last_error_at = now() WHERE id = $1`, [feedId, error.slice(0, 300)]);
  }
}
