export * from './infra';
export * from './postgres';
export * from './tokens';
export * from './https';
export * from './fuzz';
export * from './seal-personal';
export * from './billing';
