import { createHmac, generateKeyPairSync } from 'node:crypto';
import type { EntityType } from '../../src/guards/pii.detector';

/**
 * The labelled PII corpus the router is measured on: every entity type, each value in a
 * sentence, and near-misses that must NOT be masked (checksum failures, excluded ranges,
 * look-alikes). Secrets that look real (a private key, a signed JWT) are made at load
 * time, so no key sits in the repository.
 */
export interface Positive {
  type: EntityType;
  value: string;
  text: string;
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const jwtHeader = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const jwtBody = b64url(JSON.stringify({ sub: 'u-1', exp: 2000000000 }));
const jwt = `${jwtHeader}.${jwtBody}.${createHmac('sha256', 'k').update(`${jwtHeader}.${jwtBody}`).digest('base64url')}`;
const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim();

const p = (type: EntityType, value: string, sentence: string): Positive => ({ type, value, text: sentence.replace('{}', value) });

export const POSITIVES: readonly Positive[] = [
  p('email', 'alice.martin@example.com', 'Please write to {} about the invoice.'),
  p('email', 'j.doe+billing@sub.example.co.uk', 'CC: {}'),
  p('phone', '+1 415 555 2671', 'Call me on {} tomorrow.'),
  p('phone', '+44 20 7946 0958', 'London office: {}.'),
  p('phone', '(212) 736-5000', 'The front desk is {}.'),
  p('phone', '+86 138 0013 8000', '客户电话 {}'),
  p('ip', '192.168.10.25', 'The server at {} is down.'),
  p('ip', '2001:db8:85a3::8a2e:370:7334', 'IPv6 peer {} refused.'),
  p('card', '4111 1111 1111 1111', 'Card number {} expires 12/29.'),
  p('card', '5500-0000-0000-0004', 'Mastercard {}'),
  p('card', '378282246310005', 'Amex {} on file.'),
  p('iban', 'DE89 3704 0044 0532 0130 00', 'Transfer to {} today.'),
  p('iban', 'GB82WEST12345698765432', 'Beneficiary IBAN {}.'),
  p('iban', 'FR1420041010050500013M02606', 'Compte {}'),
  p('us_ssn', '123-45-6789', 'SSN {} on the form.'),
  p('cn_resident_id', '11010519491231002X', '身份证号 {}'),
  p('secret', 'AKIAIOSFODNN7EXAMPLE', 'aws_access_key_id = {}'),
  p('secret', `ghp_${'a1B2c3D4e5'.repeat(3)}a1B2c3`, 'token {} in CI'),
  p('secret', jwt, 'Authorization: Bearer {}'),
  p('secret', 'postgres://app:s3cretPass@db.internal:5432/prod', 'DATABASE_URL={}'),
  p('secret', 'Zq8vK2pL9xR4tW7mN3bC', 'api_key: {}'),
  p('secret', privateKey, 'key:\n{}\nuse it'),
];

/** Texts with no entity: near-misses and everyday look-alikes. Any mask here is over-masking. */
export const NEGATIVES: readonly string[] = [
  'Card 4111 1111 1111 1112 fails its Luhn check.',
  'IBAN DE89 3704 0044 0532 0130 01 has a bad check digit.',
  'SSN 000-12-3456 and 666-12-3456 and 123-00-4567 are never issued.',
  'The resident id 110105194912310021 has a wrong check character.',
  'Order 12345678 shipped on 2026-12-03.',
  'Release 10.2.33 fixes ticket PROJ-1234.',
  'The meeting is at 10:30 in room 4B.',
  'Version 1.2.3 of the API returns 404 for /users/42.',
  'Write to support at example dot com.',
  'The password field must be at least 12 characters.',
  'We sold 1,234,567 units in Q3 for $8,900.',
  'Use the token bucket algorithm with 100 tokens per second.',
  'The hash is sha256 and the key size is 2048 bits.',
  'Set timeout=30000 and retries=3.',
  'Coordinates 48.8566, 2.3522 are Paris.',
  'The Java class com.example.Main starts the job.',
];
