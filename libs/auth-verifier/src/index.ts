export * from './claims';
export * from './revocations';
export * from './verifier';
export * from './signing-keys';
export { createLocalJWKSet, createRemoteJWKSet } from 'jose';
