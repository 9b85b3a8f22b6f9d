export * from './ca';
export * from './issue';
export * from './directory';
export * from './identity';
export * from './spiffe';
