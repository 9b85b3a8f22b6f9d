import { DeciderSpecification } from '@palisade/eventsourcing';
import { tenantQuotasDecider, type TenantQuotasCommand } from './tenant-quotas.decider';
import type { TenantQuotasEvent } from './tenant-quotas.events';

const spec = DeciderSpecification.for(tenantQuotasDecider);
const at = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-04T10:00:00.000Z') };
const platform = { maxSandboxes: 20, cpuSeconds: 36_000 };
const setTo = (maxSandboxes: number, cpuSeconds: number) => ({ ...({ type: 'set', data: { quotas: { maxSandboxes, cpuSeconds }, platform } } as const), metadata: at }) as TenantQuotasCommand;
const remove = { type: 'remove', data: {}, metadata: at } as TenantQuotasCommand;
const set = (maxSandboxes: number, cpuSeconds: number): TenantQuotasEvent => ({ type: 'sandbox-orchestrator.tenant_quotas.set', data: { maxSandboxes, cpuSeconds } });
const removed: TenantQuotasEvent = { type: 'sandbox-orchestrator.tenant_quotas.removed', data: {} };

describe('tenant quotas decider', () => {
  it('sets a tenant’s quotas up to the platform’s, replaces them, and records nothing for the same again', () => {
    spec([]).when(setTo(3, 600)).then([set(3, 600)]);
    spec([]).when(setTo(20, 36_000)).then([set(20, 36_000)]);
    spec([]).when(setTo(0, 0)).then([set(0, 0)]); // a tenant may stop its own sandboxes altogether
    spec([set(3, 600)]).when(setTo(5, 600)).then([set(5, 600)]);
    spec([set(3, 600)]).when(setTo(3, 600)).then([]);
  });

  it('never widens the platform’s: a quota above it is refused naming it', () => {
    spec([]).when(setTo(21, 600)).thenThrows('validation', "maxSandboxes: at most the platform's 20");
    spec([set(3, 600)]).when(setTo(3, 36_001)).thenThrows('validation', "cpuSeconds: at most the platform's 36000");
  });

  it('removes a setting once (the platform’s apply again); it can be set again after', () => {
    spec([set(3, 600)]).when(remove).then([removed]);
    spec([]).when(remove).thenThrows('not_found');
    spec([set(3, 600), removed]).when(remove).thenThrows('not_found');
    spec([set(3, 600), removed]).when(setTo(3, 600)).then([set(3, 600)]);
  });
});
