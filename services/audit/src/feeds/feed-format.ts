import type { AuditRecord, Checkpoint } from '@palisade/audit-log';
import { actionClassOf, type ActionClass } from '../coverage/action-classes';

/**
 * What a SIEM feed sends, as pure functions: the Splunk HEC batch body, RFC 5424 syslog
 * lines with RFC 5425 octet-counting framing, and CEF lines. Records go out as they are
 * in the topic (the SIEM gets the verifiable record; `personal` stays encrypted), each
 * naming its partition, seq and event id so a SIEM can drop the duplicates an
 * at-least-once resend may bring.
 */

export type FeedFormat = 'json' | 'cef';

/** One item read from Kafka for a feed: a record of the feed's tenant or a checkpoint. */
export type FeedItem = { kind: 'record'; record: AuditRecord } | { kind: 'checkpoint'; checkpoint: Checkpoint };

/** RFC 5424 facility 13: log audit. */
export const SYSLOG_FACILITY = 13;
/**
 * SD-ID of our structured data element. 32473 is the enterprise number RFC 5612 reserves
 * for documentation: a deployment with its own IANA number replaces it.
 */
export const SD_ID = 'palisade@32473';

const CHANGES: ReadonlySet<ActionClass> = new Set(['permission_change', 'credential_lifecycle', 'admin_configuration', 'data_export']);

/** Syslog severity: notice (5) for changes of rights, keys and configuration and for exports, informational (6) otherwise. */
export function syslogSeverity(item: FeedItem): number {
  if (item.kind === 'checkpoint') return 6;
  return CHANGES.has(actionClassOf(item.record.event.type) as ActionClass) ? 5 : 6;
}

/** CEF severity 0–10: 5 for the same changes, 3 otherwise. */
export function cefSeverity(item: FeedItem): number {
  return syslogSeverity(item) === 5 ? 5 : 3;
}

// ---------------------------------------------------------------- CEF

/** CEF header field: backslash and pipe escaped; line breaks become spaces (a header is one line). */
export function cefHeader(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r\n|\r|\n/g, ' ');
}

/** CEF extension value: backslash, equals sign and line breaks escaped. */
export function cefValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r\n|\n/g, '\\n').replace(/\r/g, '\\r');
}

/** The inverse of cefValue (what a SIEM's parser does), for tests and verifiers. */
export function cefUnescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

function cefExtension(pairs: Array<[string, string | number | undefined]>): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${cefValue(String(v))}`)
    .join(' ');
}

/**
 * One CEF:0 line. The last extension (cs6, "record" or "checkpoint") carries the whole
 * JSON, so the SIEM can verify it against the chain; the others are for its searches.
 */
export function cefLine(item: FeedItem, productVersion: string): string {
  const header = (signatureId: string, name: string) =>
    ['CEF:0', 'Palisade', 'Palisade', cefHeader(productVersion), cefHeader(signatureId), cefHeader(name), String(cefSeverity(item))].join('|');
  if (item.kind === 'checkpoint') {
    const c = item.checkpoint;
    return `${header('audit.checkpoint', 'audit chain checkpoint')}|${cefExtension([
      ['rt', Date.parse(c.at)],
      ['cn1Label', 'partition'], ['cn1', c.partition],
      ['cn2Label', 'seq'], ['cn2', c.seq],
      ['cs2Label', 'hash'], ['cs2', c.hash],
      ['cs3Label', 'keyId'], ['cs3', c.keyId],
      ['cs6Label', 'checkpoint'], ['cs6', JSON.stringify(c)],
    ])}`;
  }
  const r = item.record;
  const e = r.event;
  return `${header(e.type, e.type)}|${cefExtension([
    ['rt', Date.parse(e.occurredAt)],
    ['externalId', e.id],
    ['cat', actionClassOf(e.type)],
    ['suser', e.actor?.id],
    ['cs1Label', 'tenantId'], ['cs1', e.tenantId],
    ['cn1Label', 'partition'], ['cn1', r.partition],
    ['cn2Label', 'seq'], ['cn2', r.seq],
    ['cs2Label', 'hash'], ['cs2', r.hash],
    ['cs4Label', 'actorType'], ['cs4', e.actor?.type],
    ['cs5Label', 'source'], ['cs5', e.source],
    ['cs6Label', 'record'], ['cs6', JSON.stringify(r)],
  ])}`;
}

// ---------------------------------------------------------------- RFC 5424 / 5425

/** PRINTUSASCII without spaces, at most `max` characters, or the nil value. */
export function syslogToken(value: string | undefined, max: number): string {
  const cleaned = (value ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return cleaned.length > 0 ? cleaned : '-';
}

/** SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3). */
export function sdValue(value: string): string {
  return value.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

export interface SyslogHeader {
  hostname: string;
  appName: string;
}

/** One RFC 5424 message (no framing). */
export function syslogLine(item: FeedItem, format: FeedFormat, header: SyslogHeader, productVersion: string): string {
  const pri = SYSLOG_FACILITY * 8 + syslogSeverity(item);
  const timestamp = item.kind === 'record' ? item.record.recordedAt : item.checkpoint.at;
  const msgId = item.kind === 'record' ? 'audit-record' : 'audit-checkpoint';
  const params: Array<[string, string]> =
    item.kind === 'record'
      ? [['partition', String(item.record.partition)], ['seq', String(item.record.seq)], ['eventId', item.record.event.id], ['tenantId', item.record.event.tenantId]]
      : [['partition', String(item.checkpoint.partition)], ['seq', String(item.checkpoint.seq)], ['keyId', item.checkpoint.keyId]];
  const sd = `[${SD_ID} ${params.map(([k, v]) => `${k}="${sdValue(v)}"`).join(' ')}]`;
  const msg = format === 'cef' ? cefLine(item, productVersion) : JSON.stringify(item.kind === 'record' ? item.record : item.checkpoint);
  return `<${pri}>1 ${timestamp} ${syslogToken(header.hostname, 255)} ${syslogToken(header.appName, 48)} - ${msgId} ${sd} ${msg}`;
}

/** RFC 5425 octet-counting frame: "<length in bytes> <message>". */
export function octetFrame(message: string): string {
  return `${Buffer.byteLength(message, 'utf8')} ${message}`;
}

// ---------------------------------------------------------------- Splunk HEC

export interface HecOptions {
  host: string;
  index?: string;
  sourcetype?: string;
}

/** One HEC event object: the record (JSON) or its CEF line, with the record's time. */
export function hecEvent(item: FeedItem, format: FeedFormat, options: HecOptions, productVersion: string): Record<string, unknown> {
  const at = item.kind === 'record' ? item.record.recordedAt : item.checkpoint.at;
  return {
    time: Date.parse(at) / 1000,
    host: options.host,
    source: 'palisade-audit',
    sourcetype: options.sourcetype ?? (item.kind === 'record' ? 'palisade:audit:record' : 'palisade:audit:checkpoint'),
    ...(options.index ? { index: options.index } : {}),
    event: format === 'cef' ? cefLine(item, productVersion) : item.kind === 'record' ? item.record : item.checkpoint,
  };
}

/** The body of POST /services/collector/event: the events' JSON, one per line. */
export function hecBody(items: readonly FeedItem[], format: FeedFormat, options: HecOptions, productVersion: string): string {
  return items.map((i) => JSON.stringify(hecEvent(i, format, options, productVersion))).join('\n');
}
