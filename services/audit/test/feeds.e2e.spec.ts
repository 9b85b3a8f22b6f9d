import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { buildEvent, newEventId, type EventEnvelope } from '@palisade/contracts';
import { checkpointSignatureValid, keysOf, recordHash, type AuditRecord, type Checkpoint } from '@palisade/audit-log';
import { ensureCa, issueCertificate } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { cefUnescape } from '../src/feeds/feed-format';
import { HecReceiver } from './feeds-hec-receiver';
import { AuditUnderTest, call, metricsOf, type Instance } from './harness';

// SIEM feeds end to end (port offset 4700: audit on 11805, then 11815): the service
// built and started as a process with its own schema, topics and durable audit-e2efeeds;
// a Splunk HEC receiver over HTTPS in this test, and the project's rsyslogd
// (deploy/local/rsyslog.sh, RFC 5425 over TLS) writing what it receives to a file.
// Tenant A has three feeds (HEC JSON, syslog CEF, syslog JSON); tenant B publishes too.
// "A SIEM down for an hour" is played by the HEC receiver closed while events are
// published, until the feed reports the failure and the topic holds every new record
// (seconds here; the cursor does not care how long).
jest.setTimeout(240_000);

/** Creating a feed that starts from the beginning reads the log: audit:read as well as audit:admin. */
const ADMIN = ['audit:admin', 'audit:read'];
const ctx = { source: 'credential' as const, now: () => new Date(), newId: () => newEventId() };

interface SyslogMessage {
  pri: number;
  hostname: string;
  msgId: string;
  sd: string;
  msg: string;
}

function parseSyslog(line: string): SyslogMessage | undefined {
  const m = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[[^\]]*\]) (.*)$/.exec(line);
  return m ? { pri: Number(m[1]), hostname: m[3], msgId: m[6], sd: m[7], msg: m[8] } : undefined;
}

/** The record or checkpoint a syslog message carries (JSON, or the CEF line's cs6). */
function payloadOf(message: SyslogMessage): AuditRecord | Checkpoint {
  if (message.msg.startsWith('CEF:0|')) return JSON.parse(cefUnescape(/ cs6=(.*)$/.exec(message.msg)![1]));
  return JSON.parse(message.msg);
}

const isRecord = (v: AuditRecord | Checkpoint): v is AuditRecord => (v as AuditRecord).event !== undefined;
const key = (r: { partition: number; seq: number }) => `${r.partition}/${r.seq}`;
/** First occurrence of each record, in arrival order (what a SIEM deduplicating by partition/seq keeps). */
const dedup = (records: AuditRecord[]) => {
  const seen = new Set<string>();
  return records.filter((r) => !seen.has(key(r)) && seen.add(key(r)));
};

describe('audit SIEM feeds: Splunk HEC and syslog over TLS (rsyslog)', () => {
  const audit = new AuditUnderTest('e2efeeds', { AUDIT_FEED_RETRY_MAX_MS: '2000', AUDIT_FEED_BATCH_MAX: '5', AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS: 'true' }, 4700);
  // The receivers run on loopback: the test deployment allows internal feed destinations explicitly.
  const [tenantA, tenantB] = audit.tenants;
  const token = `hec-${randomBytes(16).toString('hex')}`;
  const rsyslogOut = infra('RSYSLOG_OUTPUT_FILE');
  const hostCef = `feeds-${audit.suffix}-cef`;
  const hostJson = `feeds-${audit.suffix}-json`;
  let ca: string;
  let hec: HecReceiver;
  let svc: Instance;
  const feedIds: Record<string, string> = {};

  const as = async (tenant: string, scopes = ADMIN) => audit.token(scopes, tenant, `admin-${audit.suffix}`);
  const api = async (method: string, path: string, tenant: string, body?: unknown, scopes = ADMIN) =>
    call(svc.port, path, { method, token: await as(tenant, scopes), ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

  /** Publish `count` events alternately for tenants A and B (every third with personal data). */
  const publish = (count: number) =>
    audit.publish(count, {
      perBatch: 10,
      make: (n) =>
        buildEvent(ctx, {
          type: 'credential.secret.read',
          tenantId: n % 2 === 0 ? tenantA : tenantB,
          actor: { type: 'agent', id: `agent-${n % 3}` },
          data: { n, secretId: `s-${n}` },
          ...(n % 3 === 0 ? { personal: { subjectId: `subject-${n % 4}`, data: { email: `user${n}@example.com` } } } : {}),
        }),
    });

  /** Tenant A's records as the topic holds them, in (partition, seq) order, once every published event is there. */
  const topicRecordsOfA = async (): Promise<AuditRecord[]> => {
    const { records } = await audit.settleAndVerify(svc.port, 90_000);
    return records.filter((r) => r.event.tenantId === tenantA).sort((a, b) => a.partition - b.partition || a.seq - b.seq);
  };

  const hecRecords = () => hec.events.filter((e) => e.sourcetype === 'palisade:audit:record').map((e) => e.event as AuditRecord);
  const hecCheckpoints = () => hec.events.filter((e) => e.sourcetype === 'palisade:audit:checkpoint').map((e) => e.event as Checkpoint);
  const syslogOf = (hostname: string) =>
    readFileSync(rsyslogOut, 'utf8')
      .split('\n')
      .map(parseSyslog)
      .filter((m): m is SyslogMessage => m !== undefined && m.hostname === hostname);

  /** Wait until `delivered()` holds every record of `expected` (dedup'd), then return what was delivered. */
  const deliveredAll = (delivered: () => AuditRecord[], expected: AuditRecord[], timeoutMs = 90_000) =>
    eventually(() => {
      const got = delivered();
      const keys = new Set(got.map(key));
      return expected.every((r) => keys.has(key(r))) ? got : undefined;
    }, timeoutMs, 250);

  beforeAll(async () => {
    await audit.setUp();
    const pkiDir = infra('PALISADE_PKI_DIR');
    ca = readFileSync(join(pkiDir, 'ca.crt'), 'utf8');
    const cert = await issueCertificate((await ensureCa(pkiDir)).ca, { kind: 'server', name: 'hec-e2e', dns: ['localhost'], ips: ['127.0.0.1'] });
    hec = new HecReceiver(token, { cert: cert.certPem, key: cert.keyPem });
    await hec.up();
    svc = audit.start();
    await audit.ready(svc);
  });
  afterAll(async () => {
    await hec?.down();
    await audit.tearDown();
  });

  it("refuses bad feed input with a 400 naming the field, and other callers' access", async () => {
    const hecBody = { kind: 'splunk-hec', url: hec.url, token, caPem: ca };
    const http = await api('POST', '/v1/audit/feeds', tenantA, { ...hecBody, url: hec.url.replace('https:', 'http:') });
    expect(http.status).toBe(400);
    expect(http.body).toMatch(/url: must be an https/);
    const noToken = await api('POST', '/v1/audit/feeds', tenantA, { kind: 'splunk-hec', url: hec.url });
    expect(noToken.status).toBe(400);
    expect(noToken.body).toMatch(/token/);
    const badPort = await api('POST', '/v1/audit/feeds', tenantA, { kind: 'syslog', host: '127.0.0.1', port: 70000 });
    expect(badPort.status).toBe(400);
    expect(badPort.body).toMatch(/port/);
    expect((await api('POST', '/v1/audit/feeds', tenantA, { kind: 'syslog', host: 'bad host', port: 6514 })).status).toBe(400);
    expect((await api('POST', '/v1/audit/feeds', tenantA, hecBody, ['audit:read'])).status).toBe(403);
    // From the beginning is reading the log: audit:admin alone is not enough.
    const adminOnly = await api('POST', '/v1/audit/feeds', tenantA, hecBody, ['audit:admin']);
    expect(adminOnly.status).toBe(403);
    expect(adminOnly.body).toMatch(/audit:read/);
    expect((await call(svc.port, '/v1/audit/feeds')).status).toBe(401);
    // a platform principal names the tenant
    expect((await api('POST', '/v1/audit/feeds', 'system', hecBody)).status).toBe(400);
    expect((await api('GET', '/v1/audit/feeds/not-a-uuid', tenantA)).status).toBe(400);
  });

  it("creates tenant A's feeds; another tenant cannot see or delete them; the token is never shown", async () => {
    const port = Number(infra('RSYSLOG_TLS_PORT'));
    const bodies = {
      hec: { kind: 'splunk-hec', format: 'json', url: hec.url, token, caPem: ca, index: 'palisade' },
      cef: { kind: 'syslog', format: 'cef', host: '127.0.0.1', port, caPem: ca, hostname: hostCef },
      json: { kind: 'syslog', format: 'json', host: '127.0.0.1', port, caPem: ca, hostname: hostJson },
    };
    for (const [name, body] of Object.entries(bodies)) {
      const reply = await api('POST', '/v1/audit/feeds', tenantA, body);
      expect(reply.status).toBe(201);
      expect(reply.body).not.toContain(token);
      feedIds[name] = JSON.parse(reply.body).id;
    }
    const list = await api('GET', '/v1/audit/feeds', tenantA);
    expect(list.status).toBe(200);
    expect(list.body).not.toContain(token);
    const items = JSON.parse(list.body).items as Array<{ id: string; tenantId: string; destination: Record<string, unknown> }>;
    expect(items.map((i) => i.id).sort()).toEqual(Object.values(feedIds).sort());
    expect(items.find((i) => i.id === feedIds.hec)!.destination).toMatchObject({ url: hec.url, token: 'set (write-only)', ca: 'custom' });
    // tenant B: A's feeds do not exist
    expect(JSON.parse((await api('GET', '/v1/audit/feeds', tenantB)).body).items).toEqual([]);
    expect((await api('GET', `/v1/audit/feeds/${feedIds.hec}`, tenantB)).status).toBe(404);
    expect((await api('DELETE', `/v1/audit/feeds/${feedIds.hec}`, tenantB)).status).toBe(404);
    expect((await api('POST', `/v1/audit/feeds/${feedIds.hec}/pause`, tenantB)).status).toBe(404);
    // a platform principal sees them
    const platform = JSON.parse((await api('GET', '/v1/audit/feeds', 'system')).body).items as Array<{ id: string }>;
    expect(platform.map((i) => i.id)).toEqual(expect.arrayContaining(Object.values(feedIds)));
  });

  it("delivers exactly tenant A's records, in topic order, to every feed, with checkpoints that verify", async () => {
    await publish(40);
    const expected = await topicRecordsOfA();
    expect(expected.filter((r) => r.event.type === 'credential.secret.read')).toHaveLength(20);
    const jwks = keysOf(await audit.jwks(svc.port));

    const viaHec = await deliveredAll(hecRecords, expected);
    expect(viaHec.map(key)).toEqual(expected.map(key).slice(0, viaHec.length));
    for (const r of viaHec) {
      expect(r.event.tenantId).toBe(tenantA);
      expect(recordHash(r)).toBe(r.hash);
    }
    // personal data travels sealed, as in the topic
    const sealed = viaHec.find((r) => r.event.personal !== undefined)!;
    expect(sealed.event.personal).toMatchObject({ alg: 'A256GCM' });
    expect(JSON.stringify(viaHec)).not.toContain('@example.com');

    for (const host of [hostCef, hostJson]) {
      const records = await deliveredAll(() => syslogOf(host).map(payloadOf).filter(isRecord), expected);
      expect(dedup(records).map(key)).toEqual(expected.map(key).slice(0, dedup(records).length));
      for (const r of records) {
        expect(r.event.tenantId).toBe(tenantA);
        expect(recordHash(r)).toBe(r.hash);
      }
      const first = syslogOf(host).find((m) => m.msgId === 'audit-record')!;
      expect(first.pri).toBe(13 * 8 + 5); // log audit, notice: a credential read
      expect(first.sd).toMatch(/^\[palisade@32473 partition="\d+" seq="\d+" eventId="[0-9a-f-]{36}" tenantId="/);
    }

    // Checkpoints: every partition's, signed, and one seals A's last record here.
    const last = expected[expected.length - 1];
    const sealing = await eventually(() => hecCheckpoints().find((c) => c.partition === last.partition && c.seq >= last.seq), 60_000, 500);
    expect(sealing).toBeDefined();
    for (const c of hecCheckpoints()) expect(checkpointSignatureValid(c, jwks.get(c.keyId)!)).toBe(true);
    const byKey = new Map(expected.map((r) => [key(r), r]));
    const matching = hecCheckpoints().filter((c) => byKey.has(key(c)));
    for (const c of matching) expect(c.hash).toBe(byKey.get(key(c))!.hash);
    const cefCheckpoints = await eventually(() => {
      const found = syslogOf(hostCef).filter((m) => m.msgId === 'audit-checkpoint').map((m) => payloadOf(m) as Checkpoint);
      return found.length > 0 ? found : undefined;
    }, 60_000, 500);
    for (const c of cefCheckpoints) expect(checkpointSignatureValid(c, jwks.get(c.keyId)!)).toBe(true);
  });

  it('a SIEM that is down gets everything afterwards, in order, nothing lost, no gap; 503s are retried', async () => {
    await hec.down();
    const before = hecRecords().length;
    await publish(30);
    const expected = await topicRecordsOfA();
    const down = await eventually(async () => {
      const status = JSON.parse((await api('GET', `/v1/audit/feeds/${feedIds.hec}`, tenantA)).body);
      return status.lastError?.class === 'network' ? status : undefined;
    }, 60_000, 250);
    expect(down.lastError.message).not.toContain(token);
    expect(hecRecords().length).toBe(before);

    // back, but busy: 503 answers are retried, nothing is acknowledged
    hec.busy = true;
    await hec.up();
    await eventually(async () => {
      const status = JSON.parse((await api('GET', `/v1/audit/feeds/${feedIds.hec}`, tenantA)).body);
      return status.lastError?.class === 'server_error';
    }, 60_000, 250);
    expect(hecRecords().length).toBe(before);

    hec.busy = false;
    const viaHec = await deliveredAll(hecRecords, expected);
    expect(viaHec.map(key)).toEqual(expected.map(key)); // in order, each once, no gap
    const status = JSON.parse((await api('GET', `/v1/audit/feeds/${feedIds.hec}`, tenantA)).body);
    expect(status.lastDeliveredAt).not.toBeNull();
    const cursor = status.cursors.find((c: { topic: string; partition: number }) => c.topic === audit.topic && c.partition === expected[0].partition);
    expect(cursor.nextOffset).toBeGreaterThan(0);
    expect(cursor.lagOffsets).toBeGreaterThanOrEqual(0);
    const metrics = await metricsOf(svc.port);
    expect(metrics).toMatch(/palisade_audit_feed_items_total\{kind="splunk-hec"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/palisade_audit_feed_failures_total\{kind="splunk-hec",failure="network"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/palisade_audit_feed_failures_total\{kind="splunk-hec",failure="server_error"[^}]*\} [1-9]/);
  });

  it('one instance delivers; a standby resumes from the durable cursor when it is killed (-9) mid-delivery', async () => {
    // A second instance competes for the feeds lease: while both run, nothing goes out twice.
    const standby = audit.start();
    await audit.ready(standby);
    // Let one request of records through, then answer 503: the kill lands with part of
    // the new records acknowledged and the rest pending.
    hec.recordBudget = 1;
    const before = hecRecords().length;
    const busyBefore = hec.busyAnswers;
    await publish(30);
    const expected = await topicRecordsOfA();
    await eventually(() => hecRecords().length > before && hec.busyAnswers > busyBefore, 60_000, 100);
    expect(hecRecords().length).toBeLessThan(expected.length);
    await svc.stop('SIGKILL');
    hec.recordBudget = undefined;
    svc = standby;
    const viaHec = await deliveredAll(hecRecords, expected);
    expect(dedup(viaHec).map(key)).toEqual(expected.map(key));
    expect(viaHec).toHaveLength(expected.length); // HEC acknowledges: nothing sent twice here
    for (const host of [hostCef, hostJson]) {
      const records = await deliveredAll(() => syslogOf(host).map(payloadOf).filter(isRecord), expected);
      // syslog has no acknowledgement: a resend after the crash may repeat, never skip
      expect(dedup(records).map(key)).toEqual(expected.map(key));
    }
  });

  it("verifies the SIEM's certificate (another CA: nothing sent, status class tls); start=end begins at the topics' end", async () => {
    const otherCa = (await ensureCa(mkdtempSync(join(tmpdir(), 'feeds-other-ca-')))).ca.certPem;
    const hostOther = `feeds-${audit.suffix}-other-ca`;
    const created = await api('POST', '/v1/audit/feeds', tenantA, { kind: 'syslog', host: '127.0.0.1', port: Number(infra('RSYSLOG_TLS_PORT')), caPem: otherCa, hostname: hostOther, start: 'end' });
    expect(created.status).toBe(201);
    const id = JSON.parse(created.body).id as string;
    const status = JSON.parse((await api('GET', `/v1/audit/feeds/${id}`, tenantA)).body);
    // start=end: a cursor at the end of every partition of both topics, nothing behind
    expect(status.cursors.length).toBeGreaterThan(1);
    for (const c of status.cursors) expect(c.updatedAt).not.toBeNull();
    expect(status.cursors.find((c: { topic: string; nextOffset: number }) => c.topic === audit.topic && c.nextOffset > 0)).toBeDefined();
    await publish(2);
    const failed = await eventually(async () => {
      const s = JSON.parse((await api('GET', `/v1/audit/feeds/${id}`, tenantA)).body);
      return s.lastError ? s : undefined;
    }, 60_000, 250);
    expect(failed.lastError.class).toBe('tls');
    expect(failed.lastDeliveredAt).toBeNull();
    expect(syslogOf(hostOther)).toEqual([]);
    expect((await api('DELETE', `/v1/audit/feeds/${id}`, tenantA)).status).toBe(200);
  });

  it('presents a client certificate (mutual TLS) to a syslog receiver that demands one; its key is write-only', async () => {
    const theCa = (await ensureCa(infra('PALISADE_PKI_DIR'))).ca;
    const serverCert = await issueCertificate(theCa, { kind: 'server', name: 'siem-mtls-e2e', ips: ['127.0.0.1'] });
    const clientCert = await issueCertificate(theCa, { kind: 'server', name: 'siem-client-e2e' });
    const otherKey = (await issueCertificate(theCa, { kind: 'server', name: 'siem-other-e2e' })).keyPem;
    const received: string[] = [];
    const peers: string[] = [];
    const server = createTlsServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket: TLSSocket) => {
      peers.push(String(socket.getPeerCertificate().subject?.CN));
      let buf = Buffer.alloc(0);
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const space = buf.indexOf(0x20);
          if (space < 0) break;
          const length = Number(buf.subarray(0, space).toString('ascii'));
          if (buf.length < space + 1 + length) break;
          received.push(buf.subarray(space + 1, space + 1 + length).toString('utf8'));
          buf = buf.subarray(space + 1 + length);
        }
      });
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      const base = { kind: 'syslog', format: 'json', host: '127.0.0.1', port, caPem: ca };
      const mismatch = await api('POST', '/v1/audit/feeds', tenantA, { ...base, clientCertPem: clientCert.certPem, clientKeyPem: otherKey });
      expect(mismatch.status).toBe(400);
      expect(mismatch.body).toMatch(/clientKeyPem: is not the key of clientCertPem/);
      expect((await api('POST', '/v1/audit/feeds', tenantA, { ...base, clientCertPem: clientCert.certPem })).status).toBe(400);

      // without a client certificate: refused by the receiver, nothing counted as delivered
      const without = JSON.parse((await api('POST', '/v1/audit/feeds', tenantA, { ...base, hostname: `feeds-${audit.suffix}-nocert` })).body).id as string;
      const refused = await eventually(async () => {
        const st = JSON.parse((await api('GET', `/v1/audit/feeds/${without}`, tenantA)).body);
        return st.lastError ? st : undefined;
      }, 60_000, 250);
      expect(refused.lastError.class).toBe('tls');
      expect(refused.lastDeliveredAt).toBeNull();
      expect((await api('DELETE', `/v1/audit/feeds/${without}`, tenantA)).status).toBe(200);

      const created = await api('POST', '/v1/audit/feeds', tenantA, { ...base, hostname: `feeds-${audit.suffix}-mtls`, clientCertPem: clientCert.certPem, clientKeyPem: clientCert.keyPem });
      expect(created.status).toBe(201);
      expect(created.body).not.toContain('PRIVATE KEY');
      const feed = JSON.parse(created.body);
      expect(feed.destination.clientCertificate).toMatch(/CN=siem-client-e2e/);
      const expected = await topicRecordsOfA();
      const records = await deliveredAll(() => received.map((m) => parseSyslog(m)!).filter((m) => m.msgId === 'audit-record').map(payloadOf).filter(isRecord), expected);
      expect(dedup(records).map(key).slice(0, expected.length)).toEqual(expected.map(key));
      expect(peers).toContain('siem-client-e2e');
      expect((await api('GET', '/v1/audit/feeds', tenantA)).body).not.toContain('PRIVATE KEY');
      expect((await api('DELETE', `/v1/audit/feeds/${feed.id}`, tenantA)).status).toBe(200);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('every feed change is audited without the token; the token is in no log; deletion stops the feed', async () => {
    const paused = await api('POST', `/v1/audit/feeds/${feedIds.json}/pause`, tenantA);
    expect(paused.status).toBe(200);
    expect(JSON.parse(paused.body).paused).toBe(true);
    expect((await api('POST', `/v1/audit/feeds/${feedIds.json}/resume`, tenantA)).status).toBe(200);
    const deleted = await api('DELETE', `/v1/audit/feeds/${feedIds.hec}`, tenantA);
    expect(deleted.status).toBe(200);
    expect((await api('GET', `/v1/audit/feeds/${feedIds.hec}`, tenantA)).status).toBe(404);

    const changes = await eventually(async () => {
      const { records } = await audit.verify(await audit.jwks(svc.port));
      const feedEvents = records.filter((r) => r.event.type.startsWith('audit.feed.'));
      return feedEvents.length >= 12 ? feedEvents : undefined;
    }, 60_000, 1000);
    const count = (type: string) => changes.filter((r) => r.event.type === type).length;
    expect([count('audit.feed.created'), count('audit.feed.deleted'), count('audit.feed.paused'), count('audit.feed.resumed'), changes.length]).toEqual([6, 4, 1, 1, 12]);
    expect(changes.every((r) => r.event.tenantId === tenantA)).toBe(true);
    expect(JSON.stringify(changes)).not.toContain(token);
    // the feed events are tenant A's records, delivered to its remaining feeds
    await deliveredAll(() => syslogOf(hostCef).map(payloadOf).filter(isRecord), changes);

    const log = readFileSync(join(infra('PALISADE_HOME'), 'logs', 'audit-e2e', 'audit.log'), 'utf8');
    expect(log).not.toContain(token);
    expect(hec.unauthorized).toEqual([]);
    const hecCount = hec.events.length;
    await publish(4);
    await topicRecordsOfA();
    await deliveredAll(() => syslogOf(hostJson).map(payloadOf).filter(isRecord), (await topicRecordsOfA()).slice(-2));
    expect(hec.events.length).toBe(hecCount); // the deleted feed delivers nothing more
  });
});

export type { EventEnvelope };
