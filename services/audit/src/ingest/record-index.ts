import type { Transactions } from '../audit.events';
import { splitIndexable, type IndexRow, type QuarantinedRow } from './index-rows';
import type { IndexedHead, RecordsRepository } from './records.repository';

/**
 * The chain writer's view of the record index (PostgreSQL) for one topic: which ids are
 * chained, where the chains end, and indexing what was committed. Each call is one
 * transaction of its own.
 */
export class RecordIndex {
  constructor(
    private readonly transactions: Transactions,
    private readonly records: Pick<RecordsRepository, 'knownEventIds' | 'append' | 'insert' | 'quarantine' | 'heads' | 'clear' | 'countEventIds' | 'eventIdsAfter' | 'quarantinedEventIds'>,
    private readonly topic: string,
    /**
     * Records chained whose index row the index cannot hold (quarantined instead, so
     * ingest goes on): called once per record, when it is first quarantined.
     */
    private readonly onQuarantined?: (rows: readonly QuarantinedRow[]) => void,
  ) {}

  /** Which of `ids` the index (or its quarantine) holds: those are chained. */
  knownEventIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return Promise.resolve(new Set());
    return this.transactions.inTransaction((tx) => this.records.knownEventIds(tx, this.topic, ids));
  }

  /** How many event ids the index (and its quarantine) holds. */
  eventIdCount(): Promise<number> {
    return this.transactions.inTransaction((tx) => this.records.countEventIds(tx, this.topic));
  }

  /** Every event id the index (and its quarantine) holds, in pages (a transaction each). */
  async eachEventId(onPage: (ids: readonly string[]) => void, pageSize = 50_000): Promise<void> {
    onPage(await this.transactions.inTransaction((tx) => this.records.quarantinedEventIds(tx, this.topic)));
    let after: string | null = null;
    for (;;) {
      const page: string[] = await this.transactions.inTransaction((tx) => this.records.eventIdsAfter(tx, this.topic, after, pageSize));
      onPage(page);
      if (page.length < pageSize) return;
      after = page[page.length - 1];
    }
  }

  /** The last indexed (or quarantined) record of each partition. */
  heads(): Promise<IndexedHead[]> {
    return this.transactions.inTransaction((tx) => this.records.heads(tx, this.topic));
  }

  /** Empty the index and its quarantine (before rebuilding them from the topic); returns the index rows removed. */
  clear(): Promise<number> {
    return this.transactions.inTransaction((tx) => this.records.clear(tx, this.topic));
  }

  /**
   * Index committed records. A record the index cannot hold as columns (a year-0
   * `occurredAt`, a NUL byte or lone surrogate in an indexed field) is quarantined rather
   * than refused: it is in the chain (the record of truth) and must not stop the index,
   * and with it ingest, for ever. The quarantine also counts as "chained" for exactly-once.
   *
   * Rows go by COPY (`append`), which refuses a row already indexed. A row can come twice:
   * the index is written after the Kafka commit, off the commit path, while a recovery (this
   * writer's after a failure, or another instance's that took over) indexes from the topic
   * whatever lies past the index's heads. Then the transaction is redone with `insert`,
   * which leaves such rows as they are.
   */
  async index(rows: readonly IndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    const { indexable, quarantined } = splitIndexable(rows);
    const write = (by: 'append' | 'insert') =>
      this.transactions.inTransaction(async (tx) => {
        if (by === 'insert' || !(await this.records.append(tx, this.topic, indexable))) await this.records.insert(tx, this.topic, indexable);
        return quarantined.length === 0 ? [] : this.records.quarantine(tx, this.topic, quarantined);
      });
    const fresh = await write('append').catch((error: unknown) => {
      if (!isUniqueViolation(error)) throw error;
      return write('insert');
    });
    if (fresh.length > 0) this.onQuarantined?.(fresh);
  }
}

/** PostgreSQL's unique_violation (23505), as node-postgres or TypeORM reports it. */
function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  return e?.code === '23505' || e?.driverError?.code === '23505';
}
