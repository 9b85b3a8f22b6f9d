import { generateKeyPairSync } from 'node:crypto';
import { appendToChain, checkpointSignatureValid, emptyHead, recordHash, signCheckpoint, type AuditRecord, type Checkpoint } from '@palisade/audit-log';
import { cefHeader, cefLine, cefUnescape, cefValue, hecBody, octetFrame, sdValue, syslogLine, syslogToken, type FeedItem } from './feed-format';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');

function record(type = 'auth.revocation.issued', data: Record<string, unknown> = { note: 'a|b=c\\d\ne' }): AuditRecord {
  return appendToChain(emptyHead(2), {
    id: '0193a000-0000-7000-8000-000000000001',
    type,
    source: 'credential',
    tenantId: 't-1',
    actor: { type: 'user', id: 'u=1|x' },
    occurredAt: '2026-11-22T10:00:00.000Z',
    data,
  }, '2026-11-22T10:00:00.123Z').record;
}
const checkpoint = (r: AuditRecord): Checkpoint => signCheckpoint({ v: 1, partition: r.partition, seq: r.seq, hash: r.hash, at: '2026-11-22T10:00:10.000Z', keyId: 'k1' }, privateKey);
const rec = (r = record()): FeedItem => ({ kind: 'record', record: r });

/** The extension of a CEF line parsed the way a SIEM does: split at unescaped `key=`. */
function cefParse(line: string): { header: string[]; ext: Record<string, string> } {
  const header: string[] = [];
  let rest = line;
  for (let i = 0; i < 7; i++) {
    const m = /^((?:\\.|[^|\\])*)\|/.exec(rest)!;
    header.push(m[1].replace(/\\(.)/g, '$1'));
    rest = rest.slice(m[0].length);
  }
  const ext: Record<string, string> = {};
  const keys = [...rest.matchAll(/(?:^| )([A-Za-z0-9]+)=/g)].filter((m) => {
    // a key's "=" is never escaped; count the backslashes before the match
    let k = m.index!;
    let slashes = 0;
    while (k > 0 && rest[k - 1] === '\\') {
      slashes++;
      k--;
    }
    return slashes % 2 === 0;
  });
  keys.forEach((m, i) => {
    const start = m.index! + m[0].length;
    const end = i + 1 < keys.length ? keys[i + 1].index! : rest.length;
    ext[m[1]] = cefUnescape(rest.slice(start, end));
  });
  return { header, ext };
}

describe('CEF', () => {
  it('escapes backslash and pipe in the header, backslash, equals and line breaks in extensions', () => {
    expect(cefHeader('a\\b|c')).toBe('a\\\\b\\|c');
    expect(cefHeader('line\nbreak')).toBe('line break');
    expect(cefValue('a=b\\c|d\r\ne\nf\rg')).toBe('a\\=b\\\\c|d\\ne\\nf\\rg');
    for (const s of ['plain', 'a=b', 'back\\slash\\', 'x\\=y', '\\n literally', 'mixed=\\\n|']) expect(cefUnescape(cefValue(s))).toBe(s.replace(/\r\n/g, '\n'));
  });

  it('a record line has the CEF:0 header, its fields, and the whole record, which still verifies', () => {
    const r = record();
    const line = cefLine(rec(r), '0.1.0|beta');
    expect(line).not.toMatch(/[\r\n]/);
    const { header, ext } = cefParse(line);
    expect(header).toEqual(['CEF:0', 'Palisade', 'Palisade', '0.1.0|beta', 'auth.revocation.issued', 'auth.revocation.issued', '3']);
    expect(ext).toMatchObject({ externalId: r.event.id, cat: 'authentication', suser: 'u=1|x', cs1: 't-1', cn1: '2', cn2: '1', cs2: r.hash, cs6Label: 'record', rt: String(Date.parse(r.event.occurredAt)) });
    const back = JSON.parse(ext.cs6) as AuditRecord;
    expect(back).toEqual(r);
    expect(recordHash(back)).toBe(r.hash);
  });

  it('severity 5 for permission, credential, configuration changes and exports; 3 otherwise', () => {
    for (const t of ['policy.approval.approved', 'credential.secret.read', 'audit.feed.created', 'audit.events.exported']) expect(cefParse(cefLine(rec(record(t)), '1')).header[6]).toBe('5');
    expect(cefParse(cefLine(rec(record('auth.session.created')), '1')).header[6]).toBe('3');
  });

  it('a checkpoint line carries the signed checkpoint, whose signature still verifies', () => {
    const c = checkpoint(record());
    const { header, ext } = cefParse(cefLine({ kind: 'checkpoint', checkpoint: c }, '1'));
    expect(header[4]).toBe('audit.checkpoint');
    expect(ext).toMatchObject({ cn1: '2', cn2: '1', cs2: c.hash, cs3: 'k1' });
    expect(checkpointSignatureValid(JSON.parse(ext.cs6) as Checkpoint, publicKey)).toBe(true);
  });
});

describe('RFC 5424 / 5425', () => {
  const header = { hostname: 'host 1', appName: 'palisade-audit' };

  it('a record: PRI facility 13, the recorded time, structured data naming partition, seq and event id, the JSON record as MSG', () => {
    const r = record();
    const line = syslogLine(rec(r), 'json', header, '1');
    expect(line).toBe(
      `<110>1 2026-11-22T10:00:00.123Z host1 palisade-audit - audit-record [palisade@32473 partition="2" seq="1" eventId="${r.event.id}" tenantId="t-1"] ${JSON.stringify(r)}`,
    );
    expect(syslogLine(rec(record('credential.secret.read')), 'json', header, '1')).toMatch(/^<109>1 /);
    expect(syslogLine(rec(r), 'cef', header, '1')).toMatch(/\] CEF:0\|Palisade\|Palisade\|1\|auth\.revocation\.issued\|/);
  });

  it('a checkpoint: MSGID audit-checkpoint, its time and key id', () => {
    const c = checkpoint(record());
    expect(syslogLine({ kind: 'checkpoint', checkpoint: c }, 'json', header, '1')).toBe(
      `<110>1 2026-11-22T10:00:10.000Z host1 palisade-audit - audit-checkpoint [palisade@32473 partition="2" seq="1" keyId="k1"] ${JSON.stringify(c)}`,
    );
  });

  it('escapes SD-PARAM values and keeps header fields printable, bounded or nil', () => {
    expect(sdValue('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    expect(syslogToken('', 48)).toBe('-');
    expect(syslogToken(undefined, 48)).toBe('-');
    expect(syslogToken('ä b\tc', 48)).toBe('bc');
    expect(syslogToken('x'.repeat(60), 48)).toBe('x'.repeat(48));
  });

  it('frames with the length in bytes, not characters', () => {
    expect(octetFrame('abc')).toBe('3 abc');
    expect(octetFrame('é😀')).toBe('6 é😀');
  });
});

describe('Splunk HEC', () => {
  it('one JSON event per line: time in seconds, host, source, sourcetype, optional index, the record as event', () => {
    const r = record();
    const c = checkpoint(r);
    const body = hecBody([rec(r), { kind: 'checkpoint', checkpoint: c }], 'json', { host: 'h', index: 'audit' }, '1');
    const lines = body.split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ time: 1795341600.123, host: 'h', source: 'palisade-audit', sourcetype: 'palisade:audit:record', index: 'audit', event: r });
    expect(lines[1]).toEqual({ time: 1795341610, host: 'h', source: 'palisade-audit', sourcetype: 'palisade:audit:checkpoint', index: 'audit', event: c });
    const cef = JSON.parse(hecBody([rec(r)], 'cef', { host: 'h', sourcetype: 'custom' }, '1'));
    expect(cef).not.toHaveProperty('index');
    expect(cef.sourcetype).toBe('custom');
    expect(cef.event).toMatch(/^CEF:0\|/);
  });
});
