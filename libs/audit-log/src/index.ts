export * from './format';
export * from './verifier';
export * from './ndjson';
export * from './parallel';
export { fastCanonicalJson, canonicalRecordBody } from './jcs';
export { IdLog } from './id-log';
