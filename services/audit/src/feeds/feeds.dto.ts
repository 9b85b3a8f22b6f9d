import { createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';

const text = (max: number) => z.string().min(1, 'must not be empty').max(max, `at most ${max} characters`);
/** PRINTUSASCII without spaces (RFC 5424 header fields, HEC tokens). */
const printable = (max: number) => text(max).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
const caPem = z
  .string()
  .max(65_536, 'at most 65536 characters')
  .regex(/^\s*-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/, 'must be PEM certificates (-----BEGIN CERTIFICATE-----)');
const format = z.enum(['json', 'cef']).default('json');
/** Where a new feed starts: the oldest retained record (everything of the tenant, the default) or the end of the topics now. */
const start = z.enum(['beginning', 'end']).default('beginning');
const tenantId = z.string().regex(TENANT_ID, 'must be a tenant id').optional();

const httpsUrl = z
  .string()
  .max(2048, 'at most 2048 characters')
  .refine((v) => URL.canParse(v), 'must be a URL')
  .refine((v) => !URL.canParse(v) || new URL(v).protocol === 'https:', 'must be an https:// URL (the token must not travel in clear)')
  .refine((v) => !URL.canParse(v) || (new URL(v).username === '' && new URL(v).password === ''), 'must not hold credentials')
  .refine((v) => !URL.canParse(v) || (new URL(v).search === '' && new URL(v).hash === ''), 'must not have a query or fragment');

const host = text(253).regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$/, 'must be a host name or an IP address');

export const hecFeedSchema = z.strictObject({
  kind: z.literal('splunk-hec'),
  format,
  start,
  tenantId,
  url: httpsUrl,
  token: printable(512),
  index: text(128).regex(/^[A-Za-z0-9_][A-Za-z0-9_-]*$/, 'letters, digits, "_" and "-"').optional(),
  sourcetype: printable(128).optional(),
  caPem: caPem.optional(),
});

const certPem = z
  .string()
  .max(65_536, 'at most 65536 characters')
  .refine((v) => parses(() => new X509Certificate(v)), 'must be a PEM certificate');
const keyPem = z
  .string()
  .max(16_384, 'at most 16384 characters')
  .refine((v) => /-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(v) && parses(() => createPrivateKey(v)), 'must be an unencrypted PEM private key');

function parses(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

export const syslogFeedSchema = z.strictObject({
  kind: z.literal('syslog'),
  format,
  start,
  tenantId,
  host,
  port: z.number({ message: 'must be a number' }).int('must be an integer').min(1, 'must be 1–65535').max(65_535, 'must be 1–65535'),
  caPem: caPem.optional(),
  appName: printable(48).default('palisade-audit'),
  hostname: printable(255).optional(),
  /** Mutual TLS: a client certificate and its key (write-only), both or neither. */
  clientCertPem: certPem.optional(),
  clientKeyPem: keyPem.optional(),
})
  .refine((v) => (v.clientCertPem === undefined) === (v.clientKeyPem === undefined), { path: ['clientKeyPem'], message: 'clientCertPem and clientKeyPem go together' })
  .refine((v) => !v.clientCertPem || !v.clientKeyPem || keyMatches(v.clientCertPem, v.clientKeyPem), { path: ['clientKeyPem'], message: 'is not the key of clientCertPem' });

/** Runs even when the fields themselves failed their checks: unreadable input is not a match, never an exception. */
function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

export const createFeedSchema = z.discriminatedUnion('kind', [hecFeedSchema, syslogFeedSchema], { message: 'kind must be "splunk-hec" or "syslog"' });
export type CreateFeed = z.infer<typeof createFeedSchema>;

export const feedIdSchema = z.uuid('must be a feed id (UUID)');
