export * from './infra';
export * from './postgres';
