import type { EventEnvelope } from '@palisade/contracts';
import type { AppendResult, EventStore, ExpectedVersion, ReadStreamResult, Transaction } from '@palisade/eventsourcing';

/**
 * The event store as the users' command handler sees it: reading a user's stream first
 * takes that stream's lock for the transaction, so commands on one user (sign-ins, the
 * failures the lockout counts, revocations, password changes) wait for each other
 * instead of racing to the append and, after the handler's retries, answering a
 * concurrency error to a client.
 */
export class SerializedStreams implements EventStore {
  constructor(
    private readonly inner: EventStore,
    private readonly lock: (tx: Transaction, streamId: string) => Promise<void>,
  ) {}

  inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.inner.inTransaction(work);
  }

  async readStream(tx: Transaction, streamId: string): Promise<ReadStreamResult> {
    await this.lock(tx, streamId);
    return this.inner.readStream(tx, streamId);
  }

  appendToStream(tx: Transaction, streamId: string, events: readonly EventEnvelope[], expectedVersion: ExpectedVersion): Promise<AppendResult> {
    return this.inner.appendToStream(tx, streamId, events, expectedVersion);
  }
}
