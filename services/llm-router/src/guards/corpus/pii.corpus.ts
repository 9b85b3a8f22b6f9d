import { createHmac, generateKeyPairSync } from 'node:crypto';
import type { EntityType } from '../pii.detector';

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

/** Made-up values of the shapes gitleaks' rules describe, assembled here so no token-shaped string sits in the repository whole. */
const rep = (s: string, n: number) => s.repeat(Math.ceil(n / s.length)).slice(0, n);
const azureAccountKey = Buffer.alloc(64, 7).toString('base64');

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
  p('secret', `wJalrXUtnFEMI/K7MDENG/bPxRfiCY${'EXAMPLEKEY'}`, 'aws_secret_access_key = {}'),
  p('secret', `Xy28Q~${rep('aB3dE5fG7h', 34)}`, 'AZURE_CLIENT_SECRET="{}"'),
  p('secret', azureAccountKey, 'DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey={};EndpointSuffix=core.windows.net'),
  p('secret', `https://hooks.slack.com/services/T0${rep('1', 7)}/B0${rep('2', 7)}/${rep('Xq7Lm2Pz', 24)}`, 'post the alert to {} please'),
  p('secret', `npm_${rep('a1b2c3d4e5', 36)}`, '//registry.npmjs.org/:_authToken={}'),
  p('secret', `hf_${rep('AbCdEfGhIj', 34)}`, 'HF token {} for the model download'),
  p('secret', `SG.${rep('Ab1Cd2Ef3G', 22)}.${rep('Hi4Jk5Lm6N', 43)}`, 'sendgrid {}'),
  p('secret', `dop_v1_${rep('0a1b2c3d4e5f', 64)}`, 'doctl auth init -t {}'),
  p('secret', `dapi${rep('0123456789abcdef', 32)}`, 'databricks token {}'),
  p('secret', `LTAI${rep('5tQm9Wz3Rk', 20)}`, 'Alibaba AccessKeyId {}'),
  p('secret', `ya29.${rep('a0AfH6SMB-x_9', 60)}`, 'curl -H "Authorization: Bearer {}"'),
  p('secret', `hvs.${rep('CAESIJ-x_yZ9', 95)}`, 'VAULT_TOKEN={}'),
  p('secret', `sk-proj-${rep('Qw3Er5Ty7U', 48)}`, 'OPENAI_API_KEY={}'),
  p('secret', `sk-ant-api03-${rep('Zx9Cv7Bn5M', 93)}`, 'x-api-key: {}'),
  p('secret', 'Sup3rS3cretPw', 'jdbc:mysql://db.internal:3306/shop?user=app&password={}'),
  p('secret', 'Hunter2Hunter2', 'Server=tcp:sql.example.net,1433;Database=shop;User ID=app;Password={};'),
  p('date_of_birth', '03/14/1985', 'Patient DOB: {} (verify at check-in).'),
  p('date_of_birth', '12 May 1990', 'She was born on {} in Lyon.'),
  p('date_of_birth', '1979-02-28', 'Date of birth {}'),
  p('date_of_birth', 'March 3, 1962', 'birthday: {}'),
  p('date_of_birth', '1990年5月12日', '出生日期：{}'),
  p('date_of_birth', '01.02.1975', 'geboren am {} in Köln'),
  p('uk_nino', 'AB123456C', 'NI number {} on the P60.'),
  p('uk_nino', 'JG 10 37 41 D', 'National Insurance: {}'),
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
  'The project was born in 2019; version 2 shipped on 2026-12-03.',
  'The birthday party is on 2099-06-01 at noon.',
  'Date of birth: 31/02/1990 was rejected as impossible.',
  'The DOB field is written DD/MM/YYYY.',
  'References GB123456A and QQ123456C are not NI numbers, nor is AB123456E.',
  'Set npm_config_cache and install hf_transfer first.',
  'Replace AccountKey=<your key> with the key from the portal.',
  'jdbc:mysql://db.internal:3306/shop?user=app&useSSL=true',
  'Server=db;Database=shop;Integrated Security=true;',
  'ya29 is the prefix of Google access tokens.',
  'The sk-learn and ask-the-team channels are on Slack.',
  'Ask the task runner for the dapi endpoint list.',
  'Card 5500-0000-0000-0005 and Amex 378282246310006 fail the Luhn check.',
  'IBAN GB82WEST12345698765433 and FR1420041010050500013M02607 fail mod-97.',
  'The resident id 11010519491231002Y has no valid check character.',
];
