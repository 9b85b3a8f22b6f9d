import { ConcurrencyError, systemEventContext, type EventEnvelope, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import type { TenantQuotasEvent } from './tenant-quotas.events';
import type { TenantQuotasRepository, TenantQuotasRow } from './tenant-quotas.repository';
import { TenantQuotasService } from './tenant-quotas.service';

const admin = { type: 'user', id: 'alice', tenantId: 'acme', scopes: ['policy:admin'] } as Principal;
const otherAdmin = { type: 'user', id: 'olga', tenantId: 'other', scopes: ['policy:admin'] } as Principal;
const member = { type: 'user', id: 'bob', tenantId: 'acme', scopes: ['agents:manage'] } as Principal;
const agent = { type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice', scopes: ['policy:admin'] } as Principal;
const platform = { maxSandboxes: 20, cpuSeconds: 36_000, cpuWindowMs: 24 * 3_600_000 };

/** The read model as the projection keeps it, in memory, and the events it saw. */
function memoryRepository() {
  const rows = new Map<string, TenantQuotasRow>();
  const events: Array<{ type: string; tenantId: string; actor: string }> = [];
  const repo: Pick<TenantQuotasRepository, 'quotasOf' | 'projection'> = {
    quotasOf: async (tenantId) => rows.get(tenantId),
    projection: {
      name: 'sandbox_tenant_quotas',
      handles: ['sandbox-orchestrator.tenant_quotas.set', 'sandbox-orchestrator.tenant_quotas.removed'],
      apply: async (_tx, envelopes: readonly EventEnvelope[], version) => {
        for (const e of envelopes) {
          const event = { type: e.type, data: e.data } as TenantQuotasEvent;
          events.push({ type: e.type, tenantId: e.tenantId, actor: e.actor.id });
          const before = rows.get(e.tenantId);
          rows.set(
            e.tenantId,
            event.type === 'sandbox-orchestrator.tenant_quotas.set'
              ? { ...event.data, status: 'set', version, updatedAt: e.occurredAt }
              : { maxSandboxes: before?.maxSandboxes ?? 0, cpuSeconds: before?.cpuSeconds ?? 0, status: 'removed', version, updatedAt: e.occurredAt },
          );
        }
      },
    },
  };
  return { repo, events, rows };
}

function harness() {
  const { repo, events, rows } = memoryRepository();
  const clock = { now: new Date('2026-12-04T10:00:00Z') };
  let reads = 0;
  const counted = { ...repo, quotasOf: (tenantId: string) => (reads++, repo.quotasOf(tenantId)) };
  const service = new TenantQuotasService({ store: new InMemoryEventStore(), repo: counted, platform, eventContext: systemEventContext('sandbox-orchestrator'), now: () => clock.now });
  return { service, events, rows, clock, reads: () => reads };
}

describe('TenantQuotasService', () => {
  it('shows the platform’s quotas until the tenant sets its own; enforces the tenant’s once set, the platform’s again once removed', async () => {
    const { service, events } = harness();
    expect(await service.get(admin, 'acme')).toEqual({ tenantId: 'acme', maxSandboxes: 20, cpuSeconds: 36_000, source: 'platform', platform: { maxSandboxes: 20, cpuSeconds: 36_000 }, cpuWindowHours: 24, etag: 0 });
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 20, cpuSeconds: 36_000 });
    const set = await service.set(admin, 'acme', { maxSandboxes: 2, cpuSeconds: 60 }, 0);
    expect(set).toMatchObject({ maxSandboxes: 2, cpuSeconds: 60, source: 'tenant', etag: 1 });
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 2, cpuSeconds: 60 });
    expect(await service.quotasFor('other')).toEqual({ maxSandboxes: 20, cpuSeconds: 36_000 }); // per tenant
    await service.remove(admin, 'acme', 1);
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 20, cpuSeconds: 36_000 });
    expect(await service.get(admin, 'acme')).toMatchObject({ source: 'platform', etag: 2 });
    expect(events).toEqual([
      { type: 'sandbox-orchestrator.tenant_quotas.set', tenantId: 'acme', actor: 'alice' },
      { type: 'sandbox-orchestrator.tenant_quotas.removed', tenantId: 'acme', actor: 'alice' },
    ]);
  });

  it('reuses the quotas in force for 5 s (one read for many executions); a change made elsewhere is seen after them, one made here at once', async () => {
    const { service, rows, clock, reads } = harness();
    for (let i = 0; i < 3; i++) expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 20, cpuSeconds: 36_000 });
    expect(reads()).toBe(1);
    // another instance set them: this one keeps the platform's until 5 s passed
    rows.set('acme', { maxSandboxes: 1, cpuSeconds: 10, status: 'set', version: 1, updatedAt: '' });
    clock.now = new Date(clock.now.getTime() + 4999);
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 20, cpuSeconds: 36_000 });
    clock.now = new Date(clock.now.getTime() + 1);
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 1, cpuSeconds: 10 });
    expect(reads()).toBe(2);
    // changed through this instance: the next ask reads them
    await service.set(admin, 'acme', { maxSandboxes: 3, cpuSeconds: 30 });
    expect(await service.quotasFor('acme')).toEqual({ maxSandboxes: 3, cpuSeconds: 30 });
  });

  it('honours If-Match: a stale version is 409, never retried; 0 only while none was set', async () => {
    const { service } = harness();
    await service.set(admin, 'acme', { maxSandboxes: 2, cpuSeconds: 60 }, 0);
    await expect(service.set(admin, 'acme', { maxSandboxes: 3, cpuSeconds: 60 }, 0)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(service.remove(admin, 'acme', 7)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(service.set(admin, 'acme', { maxSandboxes: 3, cpuSeconds: 60 }, 1)).resolves.toMatchObject({ maxSandboxes: 3, etag: 2 });
  });

  it('is the tenant’s administrators’ only: another tenant’s admin 404, a member and an agent (even with the scope) 403', async () => {
    const { service, events } = harness();
    await expect(service.get(otherAdmin, 'acme')).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.set(otherAdmin, 'acme', { maxSandboxes: 1, cpuSeconds: 1 })).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.remove(otherAdmin, 'acme')).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.set(member, 'acme', { maxSandboxes: 1, cpuSeconds: 1 })).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('policy:admin') });
    await expect(service.get(member, 'acme')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(service.set(agent, 'acme', { maxSandboxes: 1, cpuSeconds: 1 })).rejects.toMatchObject({ code: 'forbidden', message: 'an agent administers no sandbox quotas' });
    expect(events).toEqual([]);
  });

  it('refuses quotas above the platform’s (400 naming the field)', async () => {
    const { service } = harness();
    await expect(service.set(admin, 'acme', { maxSandboxes: 21, cpuSeconds: 60 })).rejects.toMatchObject({ code: 'validation', message: "maxSandboxes: at most the platform's 20" });
  });
});
