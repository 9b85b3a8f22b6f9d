import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEvent, newEventId } from '@palisade/contracts';
import type { AuditRecord } from '@palisade/audit-log';
import { ensureCa, issueCertificate } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { cefUnescape } from '../src/feeds/feed-format';
import { HecReceiver } from './feeds-hec-receiver';
import { AuditUnderTest, call } from './harness';

// A SIEM feed created after a backlog (FEEDS_BACKLOG records of one tenant, default 3,000
// ≈ 1.5 MB: more than one Kafka fetch of a partition) receives all of it, in order,
// once over HEC, and over syslog CEF. Port offset 4750 (audit on 11855), durable
// audit-e2efeeds2. Prints how long the catch-up took (a figure, not an assertion).
jest.setTimeout(300_000);

const N = Number(process.env.FEEDS_BACKLOG ?? 3000);

describe('audit SIEM feeds: a backlog', () => {
  const audit = new AuditUnderTest('e2efeeds2', { AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS: 'true' }, 4750);
  const tenant = audit.tenants[0];
  const hecToken = randomBytes(16).toString('hex');
  let hec: HecReceiver;
  const keyOf = (r: AuditRecord) => `${r.partition}/${r.seq}`;
  /** The backlog's records (the feeds' own audit.feed.created records follow them). */
  const backlog = (rs: AuditRecord[]) => rs.filter((r) => r.event.type === 'billing.usage.recorded').map(keyOf);

  beforeAll(async () => {
    await audit.setUp();
    const pkiDir = infra('PALISADE_PKI_DIR');
    const cert = await issueCertificate((await ensureCa(pkiDir)).ca, { kind: 'server', name: 'hec-e2e', ips: ['127.0.0.1'] });
    hec = new HecReceiver(hecToken, { cert: cert.certPem, key: cert.keyPem });
    await hec.up();
  });
  afterAll(async () => {
    await hec?.down();
    await audit.tearDown();
  });

  it('larger than one Kafka fetch reaches HEC and syslog completely, in order', async () => {
    const svc = audit.start();
    await audit.ready(svc);
    const ctx = { source: 'billing' as const, now: () => new Date(), newId: () => newEventId() };
    await audit.publish(N, {
      perBatch: 500,
      make: (n) => buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: tenant, actor: { type: 'agent', id: 'agent-1' }, data: { n, padding: 'x'.repeat(200) } }),
    });
    const { records } = await audit.settleAndVerify(svc.port, 240_000);
    const expected = backlog(records.filter((r) => r.event.tenantId === tenant));
    expect(expected).toHaveLength(N);

    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8');
    const host = `backlog-${audit.suffix}`;
    const token = await audit.token(['audit:admin', 'audit:read'], tenant);
    const started = Date.now();
    for (const body of [
      { kind: 'splunk-hec', url: hec.url, token: hecToken, caPem: ca },
      { kind: 'syslog', format: 'cef', host: '127.0.0.1', port: Number(infra('RSYSLOG_TLS_PORT')), caPem: ca, hostname: host },
    ]) {
      expect((await call(svc.port, '/v1/audit/feeds', { method: 'POST', token, body: JSON.stringify(body) })).status).toBe(201);
    }
    const viaHec = await eventually(() => {
      const keys = backlog(hec.events.filter((e) => e.sourcetype === 'palisade:audit:record').map((e) => e.event as AuditRecord));
      return keys.length >= N ? { at: Date.now(), keys } : undefined;
    }, 120_000, 50);
    const viaSyslog = await eventually(() => {
      const lines = readFileSync(infra('RSYSLOG_OUTPUT_FILE'), 'utf8').split('\n').filter((l) => l.includes(` ${host} `) && l.includes(' audit-record '));
      const keys = backlog(lines.map((l) => JSON.parse(cefUnescape(/ cs6=(.*)$/.exec(l)![1])) as AuditRecord));
      return new Set(keys).size >= N ? { at: Date.now(), keys } : undefined;
    }, 120_000, 200);
    expect(viaHec.keys).toEqual(expected);
    expect([...new Set(viaSyslog.keys)]).toEqual(expected);
    const seconds = (at: number) => (at - started) / 1000;
    console.log(
      `feeds backlog: ${N} records; HEC JSON ${seconds(viaHec.at).toFixed(2)} s (${Math.round(N / seconds(viaHec.at))}/s, ${hec.requests} requests); ` +
        `syslog CEF ${seconds(viaSyslog.at).toFixed(2)} s (${Math.round(N / seconds(viaSyslog.at))}/s)`,
    );
  });
});
