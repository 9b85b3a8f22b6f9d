import { PalisadeError } from '@palisade/contracts';
import { parse as parseInput } from '../validation';
import { createFeedSchema } from './feeds.dto';

const parse = (body: unknown) => parseInput(createFeedSchema, body, 'body');
const refusal = (body: unknown): string => {
  try {
    parse(body);
  } catch (error) {
    expect(error).toBeInstanceOf(PalisadeError);
    expect((error as PalisadeError).code).toBe('validation');
    return (error as Error).message;
  }
  throw new Error('accepted');
};
const hec = { kind: 'splunk-hec', url: 'https://siem.example:8088', token: '1b5c-token' };
const syslog = { kind: 'syslog', host: 'siem.example', port: 6514 };

describe('feed DTO', () => {
  it('accepts HEC and syslog feeds with defaults', () => {
    expect(parse(hec)).toEqual({ ...hec, format: 'json', start: 'beginning' });
    expect(parse({ ...syslog, format: 'cef', host: '127.0.0.1' })).toEqual({ ...syslog, host: '127.0.0.1', format: 'cef', start: 'beginning', appName: 'palisade-audit' });
  });

  it('refuses bad input, naming the field', () => {
    expect(refusal({ ...hec, url: 'http://siem.example:8088' })).toMatch(/url: must be an https:\/\/ URL/);
    expect(refusal({ ...hec, url: 'https://u:p@siem.example' })).toMatch(/url: must not hold credentials/);
    expect(refusal({ ...hec, url: 'not a url' })).toMatch(/url: must be a URL/);
    expect(refusal({ kind: 'splunk-hec', url: hec.url })).toMatch(/token/);
    expect(refusal({ ...hec, token: 'has space' })).toMatch(/token/);
    expect(refusal({ ...hec, token: 'x'.repeat(513) })).toMatch(/token/);
    expect(refusal({ ...hec, format: 'xml' })).toMatch(/format/);
    expect(refusal({ ...hec, bogus: 1 })).toMatch(/bogus/);
    expect(refusal({ ...hec, caPem: 'not pem' })).toMatch(/caPem/);
    expect(refusal({ ...syslog, port: 0 })).toMatch(/port/);
    expect(refusal({ ...syslog, port: 65536 })).toMatch(/port/);
    expect(refusal({ ...syslog, port: '6514' })).toMatch(/port/);
    expect(refusal({ ...syslog, host: 'bad host' })).toMatch(/host/);
    expect(refusal({ ...syslog, appName: 'x'.repeat(49) })).toMatch(/appName/);
    expect(refusal({ ...syslog, token: 'x' })).toMatch(/token/);
    expect(refusal({ ...syslog, clientCertPem: 'not a certificate', clientKeyPem: 'nor a key' })).toMatch(/clientCertPem: must be a PEM certificate/);
    expect(refusal({ ...syslog, clientKeyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' })).toMatch(/clientKeyPem: must be an unencrypted PEM private key/);
    expect(refusal({ ...syslog, clientKeyPem: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----' })).toMatch(/clientKeyPem/);
    expect(refusal({ kind: 'kafka' })).toMatch(/kind/);
    expect(refusal(undefined)).toMatch(/kind/);
  });
});
