import { randomUUID } from 'node:crypto';
import { Client, type Notification } from 'pg';
import { buildEvent, systemEventContext } from '@palisade/contracts';
import { EVENTS_APPENDED_CHANNEL, NOTIFY_AFTER_COMMIT_SETTING } from '@palisade/postgres';
import { GroupCommit } from '../src/leases/group-commit';
import { hashToken } from '../src/leases/lease-token';
import type { LeaseGrantWrite } from '../src/leases/leases.repository';
import { admin, agent, startVault, type Harness } from './support/harness';

/** Group-committed lease grants and redemptions under concurrency, on real PostgreSQL. */
describe('lease group commit (PostgreSQL)', () => {
  let h: Harness;
  let secretId: string;
  beforeAll(async () => {
    h = await startVault({ settings: { leaseMaxUses: 10 } });
    secretId = (await h.secrets.create(admin('acme'), { name: 'busy', value: Buffer.from('busy-value'), scopes: ['tool:gerrit'] })).id;
  });
  afterAll(() => h.close());

  const redeem = (g: { token: string; sessionId: string; tool: string }) =>
    h.leases.redeem('sandbox-orchestrator', { token: g.token, tenantId: 'acme', sessionId: g.sessionId, tool: g.tool });

  const readVersions = async (leaseId: string): Promise<number[]> =>
    (
      await h.db.dataSource.query(`SELECT stream_version FROM "${h.db.schema}".events WHERE stream_id = $1 ORDER BY stream_version`, [`lease-${leaseId}`])
    ).map((r: { stream_version: number }) => r.stream_version);

  const streamVersionOf = async (id: string): Promise<number> =>
    (await h.db.dataSource.query(`SELECT stream_version FROM "${h.db.schema}".secrets WHERE secret_id = $1`, [id]))[0].stream_version;

  /** A grant of a single-use 30 s lease for `gerrit`, as the service would write it, decided on `secretStreamVersion`. */
  const grantWrite = ({ leaseId, secretId, sessionId, secretStreamVersion }: { leaseId: string; secretId: string; sessionId: string; secretStreamVersion: number }): LeaseGrantWrite => {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + 30_000);
    return {
      secretStreamVersion,
      lease: { leaseId, tokenHash: hashToken(`pl_${randomUUID()}`), tenantId: 'acme', secretId, sessionId, tool: 'gerrit', expiresAt, uses: 1, usesLeft: 1, grantedBy: 'agent:agent-1', createdAt: now },
      event: buildEvent(systemEventContext('credential'), {
        type: 'credential.lease.granted',
        tenantId: 'acme',
        actor: { type: 'agent', id: 'agent-1' },
        data: { leaseId, secretId, sessionId, tool: 'gerrit', expiresAt: expiresAt.toISOString(), uses: 1 },
      }),
    };
  };

  it('many concurrent leases, and racing redemptions of multi-use leases, give exactly the allowed values with one record each', async () => {
    const single = await Promise.all(Array.from({ length: 40 }, (_, i) => h.leases.grant(agent('acme'), { secretId, sessionId: `s-${i}`, tool: 'gerrit' })));
    const multi = await Promise.all([4, 7].map((uses) => h.leases.grant(agent('acme'), { secretId, sessionId: 'shared', tool: 'gerrit', uses })));
    const attempts = [...single.map((g) => ({ g, n: 2 })), ...multi.map((g) => ({ g, n: 12 }))].flatMap(({ g, n }) => Array.from({ length: n }, () => g));
    const settled = await Promise.allSettled(attempts.map((g) => redeem(g)));
    for (const g of [...single, ...multi]) {
      const mine = settled.filter((_, i) => attempts[i] === g);
      const values = mine.filter((s) => s.status === 'fulfilled');
      expect(values).toHaveLength(g.uses);
      for (const v of values) expect(v).toMatchObject({ value: { value: 'busy-value', leaseId: g.leaseId } });
      for (const s of mine.filter((x) => x.status === 'rejected')) expect(s).toMatchObject({ reason: { code: 'illegal_state' } });
      // granted at 1, then one read per released value at 2 … 1 + uses, no gap, no extra.
      expect(await readVersions(g.leaseId)).toEqual(Array.from({ length: g.uses + 1 }, (_, i) => i + 1));
    }
  });

  it('a unit that fails inside a group does not fail the others', async () => {
    const existing = await h.leases.grant(agent('acme'), { secretId, sessionId: 'dup', tool: 'gerrit' });
    const secretStreamVersion = await streamVersionOf(secretId);
    const write = (leaseId: string) => grantWrite({ leaseId, secretId, sessionId: 'group', secretStreamVersion });
    const gc = new GroupCommit({ commit: (w: LeaseGrantWrite[]) => h.repos.leases.commitGrants(w), lanes: 1 });
    const ids = Array.from({ length: 6 }, () => randomUUID());
    ids[3] = existing.leaseId; // primary key violation: this unit cannot commit
    const settled = await Promise.allSettled(ids.map((id) => gc.run(write(id))));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const rows = await h.db.dataSource.query(`SELECT lease_id FROM "${h.db.schema}".leases WHERE session_id = 'group'`);
    expect(rows.map((r: { lease_id: string }) => r.lease_id).sort()).toEqual(ids.filter((_, i) => i !== 3).sort());
    // The existing lease kept its own single grant event.
    expect(await readVersions(existing.leaseId)).toEqual([1]);
  });

  it('a grant decided on a secret row that changed since (another stream version) is not written; the others of its group are', async () => {
    const s = await h.secrets.create(admin('acme'), { name: 'changes-under-grant', value: Buffer.from('v1'), scopes: ['tool:gerrit'] });
    const write = (secretStreamVersion: number) => grantWrite({ leaseId: randomUUID(), secretId: s.id, sessionId: 'stale', secretStreamVersion });
    const streamVersion = () => streamVersionOf(s.id);
    const decidedOn = await streamVersion();
    await h.secrets.rotate(admin('acme'), s.id, { value: Buffer.from('v2') }, s.etag);
    const current = await streamVersion();
    const writes = [write(decidedOn), write(current)];
    expect(await h.repos.leases.commitGrants(writes)).toEqual([false, true]);
    const leases = await h.db.dataSource.query(`SELECT lease_id FROM "${h.db.schema}".leases WHERE session_id = 'stale'`);
    expect(leases.map((r: { lease_id: string }) => r.lease_id)).toEqual([writes[1].lease.leaseId]);
    expect(await readVersions(writes[0].lease.leaseId)).toEqual([]);
    expect(await readVersions(writes[1].lease.leaseId)).toEqual([1]);
    await h.secrets.revoke(admin('acme'), s.id, 'leaked');
    expect(await h.repos.leases.commitGrants([write(await streamVersion())])).toEqual([false]);
  });

  it('a key revocation racing redemptions: every released value has its read record, and nothing is released after the revocation returns', async () => {
    const other = await startVault();
    try {
      const s = await other.secrets.create(admin('acme'), { name: 'revoked-under-load', value: Buffer.from('rv'), scopes: ['tool:gerrit'] });
      const grants = await Promise.all(Array.from({ length: 30 }, (_, i) => other.leases.grant(agent('acme'), { secretId: s.id, sessionId: `r-${i}`, tool: 'gerrit' })));
      const go = (g: (typeof grants)[number]) => other.leases.redeem('sandbox-orchestrator', { token: g.token, tenantId: 'acme', sessionId: g.sessionId, tool: 'gerrit' });
      const early = grants.slice(0, 20).map(go);
      await other.keyring.revokeKey(admin('acme'), { version: 1, reason: 'compromised' });
      const late = await Promise.allSettled(grants.slice(20).map(go));
      expect(late.every((r) => r.status === 'rejected')).toBe(true);
      const settled = await Promise.allSettled(early);
      const released = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.leaseId] : []));
      const reads: Array<{ lease_id: string }> = await other.db.dataSource.query(
        `SELECT envelope->'data'->>'leaseId' AS lease_id FROM "${other.db.schema}".events WHERE event_type = 'credential.secret.read'`,
      );
      expect(reads.map((r) => r.lease_id).sort()).toEqual(released.sort());
    } finally {
      await other.close();
    }
  });

  it("an append of a transaction that rings after its commit does not NOTIFY (the lease statements); every other append does", async () => {
    const { host, port, database, user, password } = h.db.app;
    const [listener, appender] = [new Client({ host, port, database, user, password }), new Client({ host, port, database, user, password })];
    await Promise.all([listener.connect(), appender.connect()]);
    try {
      const pid = (await appender.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const heard: string[] = [];
      let marker: (() => void) | undefined;
      listener.on('notification', (n: Notification) => {
        if (n.processId !== pid || n.channel !== EVENTS_APPENDED_CHANNEL) return; // other suites append in this database too
        heard.push(n.payload ?? '');
        if (n.payload) marker?.();
      });
      await listener.query(`LISTEN ${EVENTS_APPENDED_CHANNEL}`);
      // Notifications of one session arrive in commit order: once the marker after it is heard, the append's own would have been.
      // heard, and the query answered too (a query still in flight when the client ends fails with "Connection terminated")
      const ring = async (payload: string) => {
        const heardIt = new Promise<void>((resolve) => (marker = resolve));
        await Promise.all([heardIt, appender.query('SELECT pg_notify($1, $2)', [EVENTS_APPENDED_CHANNEL, payload])]);
      };
      const append = () =>
        appender.query(`INSERT INTO "${h.db.schema}".events (stream_id, stream_version, event_id, event_type, tenant_id, envelope) VALUES ($1, 1, $2, 'test.appended', 'acme', '{}')`, [
          `notify-${randomUUID()}`,
          randomUUID(),
        ]);
      await appender.query('BEGIN');
      await appender.query(`SELECT set_config('${NOTIFY_AFTER_COMMIT_SETTING}', 'on', true)`);
      await append();
      await appender.query('COMMIT');
      await ring('after-lease-like');
      expect(heard).toEqual(['after-lease-like']);
      await append(); // any other append: notified at its commit, as before
      await ring('after-plain');
      expect(heard).toEqual(['after-lease-like', '', 'after-plain']);
    } finally {
      await Promise.all([listener.end(), appender.end()]);
    }
  });
});
