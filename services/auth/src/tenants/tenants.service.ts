import { PalisadeError, type Actor, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { Transactions } from '../transactions';
import type { TenantCommand, TenantState } from './tenants.decider';
import type { PasswordPolicy, TenantEvent } from './tenants.events';
import type { TenantsRepository } from './tenants.repository';

/** Tenants and their sign-in settings; every change is an event on `tenant-<id>`, guarded by If-Match versions. */
export class TenantsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly tenantCommands: CommandHandler<TenantState, TenantCommand, TenantEvent>,
    private readonly tenantsRepo: Pick<TenantsRepository, 'find' | 'list' | 'count'>,
  ) {}

  async create(actor: Actor, input: { tenantId: string; name: string }) {
    const result = await this.tenantCommands.handle(
      streamName('tenant', input.tenantId),
      { type: 'CreateTenant', data: input, metadata: { tenantId: input.tenantId, actor, now: new Date() } },
      0,
    );
    return { tenantId: input.tenantId, version: result.version };
  }

  async get(principal: Principal) {
    const tenant = await this.transactions.inTransaction((tx) => this.tenantsRepo.find(tx, principal.tenantId));
    if (!tenant) throw new PalisadeError('not_found', 'tenant not found');
    return tenant;
  }

  async changePasswordPolicy(principal: Principal, passwordPolicy: PasswordPolicy, ifMatch?: number) {
    const r = await this.tenantCommands.handle(
      streamName('tenant', principal.tenantId),
      { type: 'ChangePasswordPolicy', data: { tenantId: principal.tenantId, passwordPolicy }, metadata: this.meta(principal) },
      ifMatch,
    );
    return { version: r.version };
  }

  async setMfaRequirement(principal: Principal, mfaRequired: boolean, ifMatch?: number) {
    const r = await this.tenantCommands.handle(
      streamName('tenant', principal.tenantId),
      { type: 'SetMfaRequirement', data: { tenantId: principal.tenantId, mfaRequired }, metadata: this.meta(principal) },
      ifMatch,
    );
    return { version: r.version };
  }

  /** Every tenant, for platform operators. */
  async list() {
    const rows = await this.transactions.inTransaction((tx) => this.tenantsRepo.list(tx));
    return rows.map((t) => ({ tenantId: t.id, name: t.name }));
  }

  /** Whether any tenant exists yet (the bootstrap works only before). */
  async any(): Promise<boolean> {
    return this.transactions.inTransaction(async (tx) => (await this.tenantsRepo.count(tx)) > 0);
  }

  private meta(principal: Principal) {
    return { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: new Date() };
  }
}
