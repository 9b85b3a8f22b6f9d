export * from './command-handler';
export * from './decider';
export * from './event-store';
export * from './specification';
export * from './in-memory-event-store';
export * from './security-events';
