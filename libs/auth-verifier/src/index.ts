export * from './claims';
export * from './revocations';
export * from './verifier';
export { createLocalJWKSet, createRemoteJWKSet } from 'jose';
