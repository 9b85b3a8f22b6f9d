import { Inject, Injectable } from '@nestjs/common';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CommandHandler, foldEvents, streamName, toDomainEvent, type Command } from '@palisade/eventsourcing';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { PolicyEngine } from '../engine/policy-engine';
import type { Rule } from '../model/policy.model';
import { policyDocumentDecider, type PolicyDocumentCommand } from '../policies/policies.decider';
import { policySetDecider, type PolicySetCommand } from './policyset.decider';
import type { PolicyDocumentEvent } from './policyset.events';

type Without<C extends Command> = C extends Command ? Omit<C, 'metadata'> : never;

/**
 * Administration of a tenant's policy: each change is decided by a pure decider,
 * appended as an event (the audit trail of permission changes), and applied by every
 * instance's engine. Versions are stream versions: ETag / If-Match.
 */
@Injectable()
export class PolicySetService {
  constructor(
    @Inject(PLATFORM) private readonly platform: Platform,
    private readonly engine: PolicyEngine,
  ) {}

  async changePolicySet(principal: Principal, command: Without<PolicySetCommand>, expectedVersion?: number): Promise<{ version: number }> {
    const handler = new CommandHandler(this.platform.eventStore!, policySetDecider, { eventContext: this.platform.eventContext });
    const result = await handler.handle(policySetStream(principal.tenantId), { ...command, metadata: metadataOf(principal) } as PolicySetCommand, expectedVersion);
    await this.engine.catchUp();
    return { version: result.version };
  }

  async publish(principal: Principal, policyId: string, rules: Rule[], expectedVersion?: number): Promise<{ policyId: string; version: number }> {
    const tenant = await this.engine.policyOf(principal.tenantId);
    return this.changeDocument(principal, { type: 'publish', data: { policyId, rules, definitions: new Map(tenant.definitions) } }, expectedVersion);
  }

  rollback(principal: Principal, policyId: string, toVersion: number, expectedVersion?: number) {
    return this.changeDocument(principal, { type: 'rollback', data: { policyId, toVersion } }, expectedVersion);
  }

  withdraw(principal: Principal, policyId: string, expectedVersion?: number) {
    return this.changeDocument(principal, { type: 'withdraw', data: { policyId } }, expectedVersion);
  }

  async document(tenantId: string, policyId: string): Promise<{ policyId: string; version: number; rules: Rule[] }> {
    const store = this.platform.eventStore!;
    const stream = await store.inTransaction((tx) => store.readStream(tx, policyStream(tenantId, policyId)));
    const state = foldEvents(policyDocumentDecider, stream.events.map((e) => toDomainEvent<PolicyDocumentEvent>(e.event)));
    if (!state.rules) throw new PalisadeError('not_found', `policy ${policyId} not found`);
    return { policyId, version: state.version, rules: state.rules };
  }

  private async changeDocument(principal: Principal, command: Without<PolicyDocumentCommand>, expectedVersion?: number) {
    const handler = new CommandHandler(this.platform.eventStore!, policyDocumentDecider, { eventContext: this.platform.eventContext });
    const policyId = command.data.policyId;
    const result = await handler.handle(policyStream(principal.tenantId, policyId), { ...command, metadata: metadataOf(principal) } as PolicyDocumentCommand, expectedVersion);
    await this.engine.catchUp();
    return { policyId, version: result.version };
  }
}

export const policySetStream = (tenantId: string) => streamName('policyset', tenantId);
export const policyStream = (tenantId: string, policyId: string) => streamName('policy', `${tenantId}/${policyId}`);

function metadataOf(principal: Principal) {
  return { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: new Date() };
}

