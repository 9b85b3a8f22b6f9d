export * from './data-source';
export * from './event-store.migration';
export * from './outbox-relay';
export * from './pg-event-store';
export * from './event-tail';
export * from './follower';
export * from './sql-migration';
export * from './pg-transaction';
