import { PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore } from '@palisade/eventsourcing';
import { egressRulesDecider, type EgressRulesCommand, type EgressRulesState } from './egress-rules.decider';
import type { EgressScope } from './egress-rules.dto';
import type { EgressRulesEvent } from './egress-rules.events';
import type { EgressRuleSetRow, EgressRulesRepository } from './egress-rules.repository';
import { narrowRules, type EgressRule } from './egress.rules';
import { requireTenantAdmin } from '../admins';

/** How long the rules of a (tenant, agent, session) are reused by the proxy; a change made here clears them at once. */
const RULES_TTL_MS = 5000;

export interface EgressRuleSetView {
  scope: string;
  rules: EgressRule[];
  updatedAt: string;
  etag: number;
}

export interface EgressRulesServiceDependencies {
  store: EventStore;
  repo: Pick<EgressRulesRepository, 'ruleSet' | 'ruleSets' | 'rulesOf' | 'projection'>;
  eventContext: EventFactoryContext;
  now?: () => Date;
}

const notFound = () => new PalisadeError('not_found', 'egress rule set not found');

/**
 * A tenant's egress rules (stream `egress_rules-<tenant>.<scope>`): the tenant's rule set
 * says which hosts its sandboxes reach and with which credentials; an agent's narrows it
 * for that agent's executions, a session's for that session's sandboxes. Only the
 * tenant's policy administrators (people with `policy:admin`) read or change them; an
 * agent administers nothing. Another tenant's rule set is not found.
 */
export class EgressRulesService {
  private readonly handler: CommandHandler<EgressRulesState, EgressRulesCommand, EgressRulesEvent>;
  private readonly now: () => Date;
  private readonly cache = new Map<string, { at: number; rules: Promise<EgressRule[]> }>();

  constructor(private readonly d: EgressRulesServiceDependencies) {
    this.handler = new CommandHandler(d.store, egressRulesDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
    this.now = d.now ?? (() => new Date());
  }

  async list(principal: Principal): Promise<EgressRuleSetView[]> {
    administers(principal);
    return (await this.d.repo.ruleSets(principal.tenantId)).map(viewOf);
  }

  async get(principal: Principal, scope: EgressScope): Promise<EgressRuleSetView> {
    administers(principal);
    const row = await this.d.repo.ruleSet(principal.tenantId, scope);
    if (!row || row.status !== 'set') throw notFound();
    return viewOf(row);
  }

  /** Replaces the scope's rules (creates the set); `ifMatch`: the version read before (409 when it changed). */
  async set(principal: Principal, scope: EgressScope, rules: EgressRule[], ifMatch?: number): Promise<EgressRuleSetView> {
    administers(principal);
    await this.handler.handle(streamName('egress_rules', `${principal.tenantId}.${scope}`), this.command(principal, { type: 'set', data: { scope, rules } }), { expectedVersion: ifMatch });
    this.cache.clear();
    return this.get(principal, scope);
  }

  async remove(principal: Principal, scope: EgressScope, ifMatch?: number): Promise<void> {
    administers(principal);
    await this.handler.handle(streamName('egress_rules', `${principal.tenantId}.${scope}`), this.command(principal, { type: 'remove', data: {} }), { expectedVersion: ifMatch });
    this.cache.clear();
  }

  /**
   * The rules in force for a sandbox's connection (the proxy): the tenant's, narrowed by
   * the agent's (when an agent's execution runs) and by the session's. Reused for a few
   * seconds; a change made through this service applies to the next connection.
   */
  rulesFor(tenantId: string, sessionId: string, agentId?: string): Promise<EgressRule[]> {
    const key = JSON.stringify([tenantId, sessionId, agentId ?? null]);
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < RULES_TTL_MS) return hit.rules;
    const rules = this.load(tenantId, sessionId, agentId);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), rules });
    rules.catch(() => this.cache.delete(key));
    return rules;
  }

  private async load(tenantId: string, sessionId: string, agentId?: string): Promise<EgressRule[]> {
    const agentScope = agentId ? `agent:${agentId}` : undefined;
    const sets = await this.d.repo.rulesOf(tenantId, ['tenant', `session:${sessionId}`, ...(agentScope ? [agentScope] : [])]);
    const forAgent = narrowRules(sets.get('tenant') ?? [], agentScope ? sets.get(agentScope) : undefined);
    return narrowRules(forAgent, sets.get(`session:${sessionId}`));
  }

  private command(principal: Principal, command: Omit<EgressRulesCommand, 'metadata'>): EgressRulesCommand {
    return { ...command, metadata: { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() } } as EgressRulesCommand;
  }
}

/** A person holding the tenant's policy administration scope (egress rules are part of the tenant's policy); never an agent or a service. */
function administers(principal: Principal): void {
  requireTenantAdmin(principal, 'egress rules');
}

function viewOf(row: EgressRuleSetRow): EgressRuleSetView {
  return { scope: row.scope, rules: row.rules, updatedAt: row.updatedAt, etag: row.version };
}
