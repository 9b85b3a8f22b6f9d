import { newEventId, type Actor, type EventFactoryContext } from '@palisade/contracts';
import { CommandHandler, type EventStore } from '@palisade/eventsourcing';
import { budgetsDecider, DEFAULT_THRESHOLDS, type BudgetCommand, type BudgetState } from './budgets.decider';
import type { BudgetEvent, BudgetSetData, Level, Period } from './budgets.events';
import type { BudgetsRepository } from './budgets.repository';

export interface SetBudgetInput {
  level: Level;
  subjectId: string;
  limitMicros: string;
  period: Period;
  timeZone?: string;
  hard?: boolean;
  thresholds?: number[];
}

/**
 * Budgets per tenant, team and agent: one stream each, `budget-<tenant>.<level>.<subject>`,
 * through the CommandHandler; the read model and the limit of the open period accounts
 * change in the same transaction.
 */
export class BudgetsService {
  private readonly handler: CommandHandler<BudgetState, BudgetCommand, BudgetEvent>;

  constructor(
    store: EventStore,
    private readonly repo: Pick<BudgetsRepository, 'set' | 'remove'>,
    eventContext: EventFactoryContext,
    private readonly now: () => Date = () => new Date(),
    /** Called after every change (the ledger forgets the budgets it remembered). */
    private readonly changed: () => void = () => undefined,
  ) {
    this.handler = new CommandHandler(store, budgetsDecider, { eventContext, tenantScoped: true });
  }

  async set(tenantId: string, actor: Actor, input: SetBudgetInput): Promise<BudgetSetData & { version: number }> {
    const now = this.now();
    const subjectId = input.level === 'tenant' ? tenantId : input.subjectId;
    const command: BudgetCommand = {
      type: 'set',
      data: {
        budgetId: newEventId(),
        level: input.level,
        subjectId,
        limitMicros: input.limitMicros,
        period: input.period,
        timeZone: input.timeZone ?? 'UTC',
        hard: input.hard ?? true,
        thresholds: input.thresholds ?? [...DEFAULT_THRESHOLDS],
      },
      metadata: { tenantId, actor, now },
    };
    const result = await this.handler.handle(streamOf(tenantId, input.level, subjectId), command, {
      alsoInTransaction: async (tx, events, version) => {
        for (const e of events) if (e.type === 'billing.budget.set') await this.repo.set(tx, tenantId, e.data as BudgetSetData, version, now);
      },
    });
    this.changed();
    return { ...result.state.budget!, version: result.version };
  }

  async remove(tenantId: string, actor: Actor, level: Level, subjectId: string): Promise<void> {
    const subject = level === 'tenant' ? tenantId : subjectId;
    await this.handler.handle(streamOf(tenantId, level, subject), { type: 'remove', data: { level, subjectId: subject }, metadata: { tenantId, actor, now: this.now() } }, {
      alsoInTransaction: async (tx, events) => {
        for (const e of events) await this.repo.remove(tx, (e.data as { budgetId: string }).budgetId);
      },
    });
    this.changed();
  }
}

export const streamOf = (tenantId: string, level: Level, subjectId: string) => `budget-${tenantId}.${level}.${subjectId}`;
