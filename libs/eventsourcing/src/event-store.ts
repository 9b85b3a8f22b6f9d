import type { EventEnvelope } from '@palisade/contracts';

/** Opaque handle of an open transaction; only the adapter that made it can use it. */
export interface Transaction {
  readonly __transaction: unique symbol;
}

/**
 * The version a stream must be at for an append to succeed: a number (0 = the stream
 * must not exist yet), or 'any' where ordering does not matter (lifecycle events).
 */
export type ExpectedVersion = number | 'any';

export interface StoredEvent {
  streamId: string;
  /** 1 for the first event of a stream, then +1. */
  version: number;
  event: EventEnvelope;
}

export interface ReadStreamResult {
  /** 0 when the stream does not exist. */
  version: number;
  events: StoredEvent[];
}

export interface AppendResult {
  nextVersion: number;
}

/**
 * The event store port. Every method takes the transaction explicitly, so the state
 * change, its events (the outbox) and inline projections commit together or not at all.
 */
export interface EventStore {
  inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  readStream(tx: Transaction, streamId: string): Promise<ReadStreamResult>;
  /** Throws ConcurrencyError when the stream is not at `expectedVersion`. */
  appendToStream(
    tx: Transaction,
    streamId: string,
    events: readonly EventEnvelope[],
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult>;
  /**
   * The events as this store will keep them (`personal` sealed), asked outside any
   * transaction so that no connection waits on the sealer; `appendToStream` stores
   * events already sealed as they are. Absent on stores that keep events as given.
   */
  sealPersonal?(events: readonly EventEnvelope[]): Promise<readonly EventEnvelope[]>;
}

/** A read model kept in the same transaction as the events it is built from. */
export interface InlineProjection {
  readonly name: string;
  /** Event types it reacts to. */
  readonly handles: readonly string[];
  /** `streamVersion`: the stream's version after the append (e.g. the ETag a read model keeps). */
  apply(tx: Transaction, events: readonly EventEnvelope[], streamVersion: number): Promise<void>;
}
