import { ConcurrencyError, type EventEnvelope } from '@palisade/contracts';
import type { AppendResult, EventStore, ExpectedVersion, ReadStreamResult, StoredEvent, Transaction } from './event-store';

/**
 * An event store in process memory, for specifications of command handling and for
 * tools that replay events. Transactions are serialised and roll back on error.
 */
export class InMemoryEventStore implements EventStore {
  private streams = new Map<string, StoredEvent[]>();
  private queue: Promise<unknown> = Promise.resolve();

  inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const run = async () => {
      const snapshot = new Map(this.streams);
      try {
        return await work({} as Transaction);
      } catch (error) {
        this.streams = snapshot;
        throw error;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async readStream(_tx: Transaction, streamId: string): Promise<ReadStreamResult> {
    const events = this.streams.get(streamId) ?? [];
    return { version: events.length, events: [...events] };
  }

  async appendToStream(
    _tx: Transaction,
    streamId: string,
    events: readonly EventEnvelope[],
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    const current = this.streams.get(streamId) ?? [];
    if (expectedVersion !== 'any' && expectedVersion !== current.length) {
      throw new ConcurrencyError(streamId, expectedVersion, current.length);
    }
    const appended = events.map((event, i) => ({ streamId, version: current.length + i + 1, event }));
    this.streams.set(streamId, [...current, ...appended]);
    return { nextVersion: current.length + events.length };
  }

  /** Every stored event in append order. */
  all(): StoredEvent[] {
    return [...this.streams.values()].flat();
  }
}
