import { PalisadeError, type Actor, type Principal } from '@palisade/contracts';
import { streamName } from '@palisade/eventsourcing';
import type { AuthRuntime } from '../auth.runtime';
import type { PasswordPolicy } from './tenants.events';

/** Tenants and their sign-in settings; every change is an event on `tenant-<id>`, guarded by If-Match versions. */
export class TenantsService {
  constructor(private readonly rt: AuthRuntime) {}

  async create(actor: Actor, input: { tenantId: string; name: string }) {
    const result = await this.rt.tenants.handle(
      streamName('tenant', input.tenantId),
      { type: 'CreateTenant', data: input, metadata: { tenantId: input.tenantId, actor, now: new Date() } },
      0,
    );
    return { tenantId: input.tenantId, version: result.version };
  }

  async get(principal: Principal) {
    const tenant = await this.rt.read((tx) => this.rt.tenantsRepo.find(tx, principal.tenantId));
    if (!tenant) throw new PalisadeError('not_found', 'tenant not found');
    return tenant;
  }

  async changePasswordPolicy(principal: Principal, passwordPolicy: PasswordPolicy, ifMatch?: number) {
    const r = await this.rt.tenants.handle(
      streamName('tenant', principal.tenantId),
      { type: 'ChangePasswordPolicy', data: { tenantId: principal.tenantId, passwordPolicy }, metadata: this.meta(principal) },
      ifMatch,
    );
    return { version: r.version };
  }

  async setMfaRequirement(principal: Principal, mfaRequired: boolean, ifMatch?: number) {
    const r = await this.rt.tenants.handle(
      streamName('tenant', principal.tenantId),
      { type: 'SetMfaRequirement', data: { tenantId: principal.tenantId, mfaRequired }, metadata: this.meta(principal) },
      ifMatch,
    );
    return { version: r.version };
  }

  /** Every tenant, for platform operators. */
  async list() {
    const rows = await this.rt.read((tx) => this.rt.tenantsRepo.list(tx));
    return rows.map((t) => ({ tenantId: t.id, name: t.name }));
  }

  /** Whether any tenant exists yet (the bootstrap works only before). */
  async any(): Promise<boolean> {
    return this.rt.read(async (tx) => (await this.rt.tenantsRepo.count(tx)) > 0);
  }

  private meta(principal: Principal) {
    return { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: new Date() };
  }
}
