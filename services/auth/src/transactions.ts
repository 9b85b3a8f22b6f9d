import type { EventStore } from '@palisade/eventsourcing';

/** One short transaction outside a command (reads, and writes that are no event): the event store's. */
export type Transactions = Pick<EventStore, 'inTransaction'>;
