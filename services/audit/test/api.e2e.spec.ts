import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEvent, newEventId, type EventEnvelope } from '@palisade/contracts';
import { eventually, infra } from '@palisade/testing';
import { AuditUnderTest, call, palisadeCli as cli, sameIds, type Instance } from './harness';

// The audit service's read side, built and started as a process (port offset 4500:
// audit on 11605), fed through PALISADE_EVENTS (durable audit-e2eapi) into a topic of
// its own: on-line verification, the CLI on the live topic, query and export with
// tenant isolation, and erasure. Access tokens are signed here with a generated key and
// verified by the service against AUTH_JWKS.
jest.setTimeout(120_000);

const PLATFORM = ['audit:read:all', 'audit:erase', 'audit:admin'];

describe('audit API: verify, query, export, erasure', () => {
  const audit = new AuditUnderTest('e2eapi', {}, 4500);
  let svc: Instance;
  const onlyOne = `erase-me-${audit.suffix}`;
  const shared = `shared-${audit.suffix}`;
  const get = async (path: string, scopes: string[], tenant = audit.tenants[0], sub = 'auditor-1') => call(svc.port, path, { token: await audit.token(scopes, tenant, sub) });
  const json = async (path: string, scopes: string[], tenant?: string, sub?: string) => {
    const reply = await get(path, scopes, tenant, sub);
    if (reply.status !== 200) throw new Error(`${path} answered ${reply.status}: ${reply.body}`);
    return JSON.parse(reply.body);
  };
  /** Every page of a query, following the cursor. */
  const all = async (query: string, scopes: string[], tenant?: string) => {
    const items: Array<{ event: EventEnvelope & { personal?: Record<string, unknown> }; partition: number; seq: number; actionClass: string }> = [];
    let cursor: string | null = null;
    do {
      const page: { items: typeof items; nextCursor: string | null } = await json(`/v1/audit/events?${query}&limit=7${cursor ? `&cursor=${cursor}` : ''}`, scopes, tenant);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  };
  const indexed = (tenant: string, count: number) =>
    eventually(async () => {
      const items = await all(`tenant=${tenant}`, ['audit:read:all'], 'system');
      return items.length >= count ? items : undefined;
    }, 30_000, 500);

  beforeAll(async () => {
    await audit.setUp();
    svc = audit.start();
    await audit.ready(svc);
    await audit.publish(96, { perBatch: 48, withPersonal: true });
    // A subject only in tenant 2's records, and one in tenants 3 and 4.
    const personal = (n: number, tenantId: string, subjectId: string): EventEnvelope =>
      buildEvent({ source: 'auth', now: () => new Date(), newId: () => newEventId() }, {
        type: 'auth.session.created',
        tenantId,
        actor: { type: 'user', id: `user-${n}` },
        data: { n },
        personal: { subjectId, data: { email: `person${n}@example.com`, ip: '192.0.2.7' } },
      });
    await audit.publish(6, { make: (n) => personal(n, n % 2 === 0 ? audit.tenants[2] : audit.tenants[3], n % 2 === 0 ? onlyOne : shared) });
    const { result, ids } = await audit.settleAndVerify(svc.port);
    expect(result.ok).toBe(true);
    expect(sameIds(audit.published, ids).found).toEqual(sameIds(audit.published, ids).published);
    for (const t of audit.tenants) await indexed(t, audit.published.filter((e) => e.tenantId === t).length);
  });
  afterAll(() => audit.tearDown());

  describe('GET /v1/audit/verify', () => {
    it('verifies a whole partition and a seq range from the topic, for a platform auditor', async () => {
      const partition = (await all(`tenant=${audit.tenants[0]}`, ['audit:read'])).map((i) => i.partition)[0];
      // ok only once a checkpoint seals the records (written within 10 s); it says how many it verified.
      const whole = await eventually(async () => {
        const v = await json(`/v1/audit/verify?partition=${partition}`, PLATFORM, 'system');
        return v.status === 'ok' ? v : undefined;
      }, 30_000, 1000);
      expect(whole).toMatchObject({ ok: true, status: 'ok', partition, fromSeq: null, toSeq: null });
      expect(whole.checkpointsVerified).toBeGreaterThanOrEqual(1);
      expect(whole.records).toBeGreaterThanOrEqual(audit.published.filter((e) => e.tenantId === audit.tenants[0]).length);
      expect(whole.partitions[partition].first).toBe(1);
      const range = await json(`/v1/audit/verify?partition=${partition}&fromSeq=2&toSeq=6`, PLATFORM, 'system');
      // Read on to the checkpoint that seals seq 6, so a signature vouches for the range.
      expect(range).toMatchObject({ ok: true, status: 'ok', records: 5, fromSeq: 2, toSeq: 6 });
      expect(range.checkpointsVerified).toBeGreaterThanOrEqual(1);
      expect(range.partitions[partition]).toMatchObject({ first: 2, last: 6 });
    });

    it('refuses tenant auditors and names bad parameters', async () => {
      expect((await get('/v1/audit/verify?partition=0', ['audit:read'])).status).toBe(403);
      expect((await call(svc.port, '/v1/audit/verify?partition=0')).status).toBe(401);
      const bad = await get('/v1/audit/verify?partition=-1', PLATFORM, 'system');
      expect(bad.status).toBe(400);
      expect(bad.body).toMatch(/partition/);
      expect((await get('/v1/audit/verify?partition=0&fromSeq=5&toSeq=2', PLATFORM, 'system')).status).toBe(400);
      expect((await get('/v1/audit/verify?partition=0&bogus=1', PLATFORM, 'system')).status).toBe(400);
      expect((await get('/v1/audit/verify?partition=999', PLATFORM, 'system')).status).toBe(404);
      expect((await get('/v1/audit/verify?partition=0&fromSeq=999999', PLATFORM, 'system')).status).toBe(404);
    });
  });

  it('palisade audit verify checks the live topic (--brokers) with the published keys', async () => {
    const run = await cli([
      'audit', 'verify', '--brokers', infra('KAFKA_BROKERS'), '--topic', audit.topic, '--checkpoint-topic', audit.checkpointTopic,
      '--keys-url', `https://127.0.0.1:${svc.port}/v1/audit/keys`,
    ]);
    expect(run.stderr).not.toMatch(/FAILED|error/i);
    expect(run.code).toBe(0);
    const m = /^OK: verified (\d+) record\(s\) in (\d+) partition\(s\) and (\d+) checkpoint\(s\)/.exec(run.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(audit.published.length);
  });

  describe('GET /v1/audit/events', () => {
    it("a tenant's auditor sees exactly that tenant's events, page by page, with personal data opened", async () => {
      const mine = audit.published.filter((e) => e.tenantId === audit.tenants[2]);
      const items = await all('actor=user-96&actor=', ['audit:read'], audit.tenants[2]).catch(() => undefined);
      expect(items).toBeUndefined(); // actor given twice: a 400, not a silent pick
      const found = await all('from=2000-01-01T00:00:00Z', ['audit:read'], audit.tenants[2]);
      expect(found.map((i) => i.event.id).sort()).toEqual(expect.arrayContaining(mine.map((e) => e.id)));
      expect(new Set(found.map((i) => i.event.tenantId))).toEqual(new Set([audit.tenants[2]]));
      const withSubject = found.find((i) => i.event.personal?.subjectId === onlyOne)!;
      expect(withSubject.event.personal).toEqual({ subjectId: onlyOne, data: { email: expect.stringMatching(/@example\.com$/), ip: '192.0.2.7' } });
    });

    it("another tenant's events never appear: asking for them returns nothing", async () => {
      const other = await all(`tenant=${audit.tenants[1]}`, ['audit:read'], audit.tenants[0]);
      expect(other).toEqual([]);
      const bySubject = await all(`subject=${onlyOne}`, ['audit:read'], audit.tenants[3]);
      expect(bySubject).toEqual([]);
    });

    it('filters by actor, type, subject and time range; a platform auditor sees every tenant', async () => {
      const t1 = audit.published.filter((e) => e.tenantId === audit.tenants[1]);
      const byActor = await all(`tenant=${audit.tenants[1]}&actor=${t1[0].actor.id}`, ['audit:read:all'], 'system');
      expect(byActor.map((i) => i.event.id).sort()).toEqual(t1.filter((e) => e.actor.id === t1[0].actor.id).map((e) => e.id).sort());
      const bySubject = await all(`subject=${shared}&type=auth.session.created`, ['audit:read:all'], 'system');
      expect(bySubject.map((i) => i.event.tenantId).sort()).toEqual([audit.tenants[3], audit.tenants[3], audit.tenants[3]]);
      const future = await all(`tenant=${audit.tenants[1]}&from=${new Date(Date.now() + 3_600_000).toISOString()}`, ['audit:read:all'], 'system');
      expect(future).toEqual([]);
      const everyone = await all(`type=billing.usage.recorded&from=${new Date(Date.now() - 600_000).toISOString()}`, ['audit:read:all'], 'system');
      expect(new Set(everyone.map((i) => i.event.tenantId).filter((t) => audit.tenants.includes(t))).size).toBe(audit.tenants.length);
    });

    it('refuses callers without a read scope and names bad filters', async () => {
      expect((await get('/v1/audit/events', ['credential:read'])).status).toBe(403);
      expect((await call(svc.port, '/v1/audit/events')).status).toBe(401);
      for (const [q, field] of [['limit=0', 'limit'], ['from=yesterday', 'from'], ['actionClass=nope', 'actionClass'], ['cursor=abc', 'cursor']]) {
        const reply = await get(`/v1/audit/events?${q}`, ['audit:read']);
        expect(reply.status).toBe(400);
        expect(reply.body).toContain(field);
      }
    });

    it('refuses malformed cursors and NUL, control or bidi characters in filters: a 400 naming the parameter, never a 500', async () => {
      const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      const cases: Array<[string, string]> = [
        [`cursor=${cursorOf([new Date().toISOString(), '-'.repeat(36)])}`, 'cursor'],
        [`cursor=${cursorOf(['0000-01-01T00:00:00.000Z', newEventId()])}`, 'cursor'],
        [`cursor=${cursorOf([new Date().toISOString(), newEventId(), 'more'])}`, 'cursor'],
        ['tenant=%00', 'tenant'],
        ['actor=%00', 'actor'],
        ['subject=%00', 'subject'],
        ['actor=a%E2%80%AEb', 'actor'],
        ['type=billing.usage.recorded,%00', 'type'],
        ['from=0000-01-01T00:00:00Z', 'from'],
      ];
      for (const [q, field] of cases) {
        for (const scopes of [['audit:read'], ['audit:read:all']]) {
          const reply = await get(`/v1/audit/events?${q}`, scopes, scopes.length === 1 && scopes[0] === 'audit:read:all' ? 'system' : audit.tenants[0]);
          expect({ q, status: reply.status }).toEqual({ q, status: 400 });
          expect(reply.body).toContain(field);
        }
      }
      const exported = await get('/v1/audit/events/export?format=csv&actor=%00', ['audit:read:all'], 'system');
      expect(exported.status).toBe(400);
      expect(exported.body).toContain('actor');
      const erase = await call(svc.port, '/v1/audit/subjects/a%00b', { method: 'DELETE', token: await audit.token(['audit:erase'], 'system') });
      expect(erase.status).toBe(400);
    });

    it('every query is itself an audited event (class data_export)', async () => {
      await json('/v1/audit/events?limit=1', ['audit:read'], audit.tenants[5], `probe-${audit.suffix}`);
      const seen = await eventually(async () => {
        const items = await all(`actor=probe-${audit.suffix}&actionClass=data_export`, ['audit:read'], audit.tenants[5]);
        return items.length > 0 ? items : undefined;
      }, 30_000, 500);
      expect(seen[0].event).toMatchObject({ type: 'audit.events.queried', tenantId: audit.tenants[5], source: 'audit' });
    });
  });

  describe('GET /v1/audit/events/export', () => {
    it("NDJSON of a platform auditor's export verifies offline with the CLI; a changed line does not", async () => {
      const reply = await get('/v1/audit/events/export?format=ndjson', ['audit:read:all'], 'system');
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toMatch(/application\/x-ndjson/);
      const dir = mkdtempSync(join(tmpdir(), 'audit-export-'));
      const file = join(dir, 'export.ndjson');
      const keys = join(dir, 'jwks.json');
      writeFileSync(file, reply.body);
      writeFileSync(keys, JSON.stringify(await audit.jwks(svc.port)));
      const ids = reply.body.trim().split('\n').map((l) => JSON.parse(l).event.id as string);
      expect(ids).toEqual(expect.arrayContaining(audit.published.map((e) => e.id)));
      const ok = await cli(['audit', 'verify', '--file', file, '--keys', keys]);
      expect(ok.stdout).toMatch(/^OK: verified \d+ record/);
      expect(ok.code).toBe(0);
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      lines[3] = lines[3].replace(/"n":(\d+)/, (_, n) => `"n":${Number(n) + 1}`);
      writeFileSync(file, `${lines.join('\n')}\n`);
      const tampered = await cli(['audit', 'verify', '--file', file, '--keys', keys]);
      expect(tampered.code).toBe(1);
      expect(tampered.stdout + tampered.stderr).toMatch(/content changed/);
    });

    it("CSV for a tenant's auditor: a header and that tenant's rows only", async () => {
      const reply = await get('/v1/audit/events/export?format=csv', ['audit:read'], audit.tenants[4]);
      expect(reply.status).toBe(200);
      const rows = reply.body.trim().split(/\r?\n/);
      expect(rows[0]).toBe('partition,seq,recordedAt,occurredAt,eventId,type,actionClass,tenantId,actorType,actorId,subjectId,source,data,hash');
      const mine = audit.published.filter((e) => e.tenantId === audit.tenants[4]);
      for (const e of mine) expect(reply.body).toContain(e.id);
      for (const other of audit.tenants.filter((t) => t !== audit.tenants[4])) expect(reply.body).not.toContain(other);
      expect((await get('/v1/audit/events/export?format=xml', ['audit:read'], audit.tenants[4])).status).toBe(400);
    });
  });

  describe('DELETE /v1/audit/subjects/:id', () => {
    it("a tenant's auditor admin erases a subject of its tenant only; its records still verify and read back as erased", async () => {
      const path = `/v1/audit/subjects/${onlyOne}`;
      const del = async (scopes: string[], tenant: string) => call(svc.port, path, { method: 'DELETE', token: await audit.token(scopes, tenant, 'dpo-1') });
      expect((await del(['audit:read'], audit.tenants[2])).status).toBe(403);
      expect((await del(['audit:erase'], audit.tenants[3])).status).toBe(404);
      const before = await all(`subject=${onlyOne}`, ['audit:read'], audit.tenants[2]);
      expect(before.length).toBe(3);
      const erased = await del(['audit:erase'], audit.tenants[2]);
      expect(erased.status).toBe(200);
      expect(JSON.parse(erased.body)).toMatchObject({ subjectId: onlyOne, keysDestroyed: 1 });
      const after = await all(`subject=${onlyOne}`, ['audit:read'], audit.tenants[2]);
      expect(after.map((i) => i.event.personal)).toEqual([0, 1, 2].map(() => ({ subjectId: onlyOne, erased: true })));
      expect(after.map((i) => i.event.id)).toEqual(before.map((i) => i.event.id));
      expect(JSON.stringify(after)).not.toMatch(/example\.com|192\.0\.2\.7/);
      // The records and the chains are untouched.
      const { result } = await audit.verify(await audit.jwks(svc.port));
      expect(result.failure).toBeUndefined();
      // The erasure is itself in the log.
      const logged = await eventually(async () => {
        const items = await all('type=audit.subject.erased', ['audit:read'], audit.tenants[2]);
        return items.find((i) => i.event.data.subjectId === onlyOne);
      }, 30_000, 500);
      expect(logged.event.actor).toEqual({ type: 'user', id: 'dpo-1' });
    });

    it('a subject in several tenants needs a platform principal', async () => {
      const path = `/v1/audit/subjects/${shared}`;
      await audit.publish(1, { make: (n) => buildEvent({ source: 'auth', now: () => new Date(), newId: () => newEventId() }, { type: 'auth.session.created', tenantId: audit.tenants[4], actor: { type: 'user', id: `user-${n}` }, data: {}, personal: { subjectId: shared, data: { email: 'x@example.com' } } }) });
      // Wait for this very record: counting a tenant's records would also count the
      // audit service's own events of that tenant (queries are audited too).
      await eventually(async () => {
        const items = await all(`subject=${shared}`, ['audit:read:all'], 'system');
        return items.some((i) => i.event.tenantId === audit.tenants[4]) ? items : undefined;
      }, 30_000, 500);
      expect((await call(svc.port, path, { method: 'DELETE', token: await audit.token(['audit:erase'], audit.tenants[3]) })).status).toBe(403);
      const reply = await call(svc.port, path, { method: 'DELETE', token: await audit.token(['audit:erase'], 'system', 'platform-dpo') });
      expect(reply.status).toBe(200);
      const after = await all(`subject=${shared}`, ['audit:read:all'], 'system');
      expect(after.length).toBe(4);
      for (const i of after) expect(i.event.personal).toEqual({ subjectId: shared, erased: true });
    });
  });

  describe('POST /v1/audit/feeds (no AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS here)', () => {
    it('refuses loopback, link-local and unspecified destinations with a 400 naming the field', async () => {
      const token = await audit.token(['audit:admin', 'audit:read'], audit.tenants[0]);
      const post = (body: unknown) => call(svc.port, '/v1/audit/feeds', { method: 'POST', token, body: JSON.stringify(body) });
      for (const url of ['https://127.0.0.1:8088', 'https://localhost:8088', 'https://[::1]:8088', 'https://169.254.169.254']) {
        const reply = await post({ kind: 'splunk-hec', url, token: 'hec-token', start: 'end' });
        expect({ url, status: reply.status }).toEqual({ url, status: 400 });
        expect(reply.body).toMatch(/url: not an allowed feed destination/);
      }
      for (const host of ['127.0.0.1', 'localhost', '0.0.0.0', 'fe80::1']) {
        const reply = await post({ kind: 'syslog', host, port: 6514, start: 'end' });
        expect({ host, status: reply.status }).toEqual({ host, status: 400 });
        expect(reply.body).toMatch(/host: not an allowed feed destination/);
      }
    });
  });

  describe('POST /v1/audit/index/rebuild', () => {
    it('empties the index and rebuilds it from the topic: the same answers afterwards', async () => {
      const query = `tenant=${audit.tenants[1]}`;
      const before = await all(query, ['audit:read:all'], 'system');
      const erasedBefore = await all(`subject=${onlyOne}`, ['audit:read:all'], 'system');
      expect((await call(svc.port, '/v1/audit/index/rebuild', { method: 'POST', token: await audit.token(['audit:admin'], audit.tenants[1]) })).status).toBe(403);
      const reply = await call(svc.port, '/v1/audit/index/rebuild', { method: 'POST', token: await audit.token(['audit:admin'], 'system', 'operator') });
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body).indexed).toBeGreaterThanOrEqual(audit.published.length);
      const after = await all(query, ['audit:read:all'], 'system');
      expect(after.map((i) => [i.event.id, i.partition, i.seq])).toEqual(before.map((i) => [i.event.id, i.partition, i.seq]));
      expect(await all(`subject=${onlyOne}`, ['audit:read:all'], 'system')).toEqual(erasedBefore);
      // Ingest goes on after the rebuild, exactly once (the service's own events about
      // these tenants — queries, exports, erasures — are in the topic too: left out here).
      await audit.publish(20);
      const jwks = await audit.jwks(svc.port);
      const { result, ids } = await eventually(async () => {
        const v = await audit.verify(jwks);
        const ids = v.records.filter((r) => r.event.source !== 'audit').map((r) => r.event.id);
        return ids.length >= audit.published.length ? { result: v.result, ids } : undefined;
      }, 60_000, 1000);
      expect(result.failure).toBeUndefined();
      expect(sameIds(audit.published, ids).found).toEqual(sameIds(audit.published, ids).published);
    });
  });

  describe('POST /v1/audit/keys/rotate', () => {
    it('rotates the checkpoint key for a platform admin only; the retired key stays published and old and new checkpoints verify', async () => {
      const before = await audit.jwks(svc.port);
      expect((await call(svc.port, '/v1/audit/keys/rotate', { method: 'POST', token: await audit.token(['audit:admin'], audit.tenants[0]) })).status).toBe(403);
      const reply = await call(svc.port, '/v1/audit/keys/rotate', { method: 'POST', token: await audit.token(['audit:admin'], 'system', 'operator') });
      expect(reply.status).toBe(200);
      const { kid, retired } = JSON.parse(reply.body) as { kid: string; retired: string };
      expect(before.keys.map((k) => k.kid)).toContain(retired);
      const after = await audit.jwks(svc.port);
      expect(after.keys.map((k) => k.kid).sort()).toEqual([...before.keys.map((k) => k.kid), kid].sort());
      expect(JSON.stringify(after)).not.toMatch(/"d"/);
      // New records get a checkpoint (signed with the key now current) within ~10 s; the whole topic verifies.
      const checkpointsBefore = (await audit.verify(after)).result.checkpoints;
      await audit.publish(5);
      const sealed = await eventually(async () => {
        const v = await audit.verify(after);
        return v.result.ok && v.result.checkpoints > checkpointsBefore ? v : undefined;
      }, 30_000, 1000);
      expect((await audit.verify(before)).result.failure?.reason).toBe('bad_signature');
      expect(sealed.result.failure).toBeUndefined();
      const run = await cli(['audit', 'verify', '--brokers', infra('KAFKA_BROKERS'), '--topic', audit.topic, '--checkpoint-topic', audit.checkpointTopic, '--keys-url', `https://127.0.0.1:${svc.port}/v1/audit/keys`]);
      expect(run.code).toBe(0);
    });
  });
});
