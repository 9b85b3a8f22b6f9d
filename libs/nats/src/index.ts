export * from './logger';
export * from './trace';
export * from './connection';
export * from './streams';
export * from './publisher';
export * from './consumer';
export * from './rpc';
export type { NatsConnection } from 'nats';
