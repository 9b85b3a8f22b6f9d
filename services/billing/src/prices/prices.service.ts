import { PalisadeError, SYSTEM_TENANT, type Actor, type EventFactoryContext } from '@palisade/contracts';
import { CommandHandler, type EventStore } from '@palisade/eventsourcing';
import { costOf, pricesDecider, type PriceTable, type PricesState, type PublishPriceTable, type Usage } from './prices.decider';
import type { PriceEntry, PriceEvent, PriceTablePublished } from './prices.events';
import type { PricesRepository } from './prices.repository';

/** The scope of the platform's default table (tenants without their own). */
export const PLATFORM_SCOPE = SYSTEM_TENANT;

/**
 * Price tables per tenant and the platform default, versioned with effective dates
 * (`price-table-<scope>` through the CommandHandler, projected in the same transaction),
 * and quotes: the cost of a usage at the table in force, rounded up once.
 */
export class PricesService {
  private readonly handler: CommandHandler<PricesState, PublishPriceTable, PriceEvent>;

  constructor(
    store: EventStore,
    private readonly repo: Pick<PricesRepository, 'project' | 'effective'>,
    eventContext: EventFactoryContext,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.handler = new CommandHandler(store, pricesDecider, { eventContext, tenantScoped: true });
  }

  async publish(scope: string, actor: Actor, input: { effectiveFrom?: string; currency: string; entries: PriceEntry[] }): Promise<PriceTablePublished['data']> {
    const now = this.now();
    const command: PublishPriceTable = {
      type: 'publish',
      data: { scope, effectiveFrom: new Date(input.effectiveFrom ?? now).toISOString(), currency: input.currency, entries: input.entries },
      metadata: { tenantId: scope, actor, now },
    };
    const result = await this.handler.handle(`price-table-${scope}`, command, {
      alsoInTransaction: async (tx, events) => {
        for (const e of events) await this.repo.project(tx, e.data as PriceTablePublished['data'], now);
      },
    });
    return result.events[0].data as PriceTablePublished['data'];
  }

  async effective(tenantId: string, at: Date = this.now()): Promise<PriceTable> {
    const table = await this.repo.effective(tenantId, PLATFORM_SCOPE, at);
    if (!table) throw new PalisadeError('not_found', 'no price table in force (neither the tenant nor the platform has one)');
    return table;
  }

  /** The cost of a usage in µ-units at the table in force now, rounded up once. */
  async quote(tenantId: string, usage: Usage): Promise<{ amountMicros: string; currency: string; priceTable: { scope: string; version: number } }> {
    const table = await this.effective(tenantId);
    return { amountMicros: costOf(table, usage).toString(), currency: table.currency, priceTable: { scope: table.scope === PLATFORM_SCOPE ? 'platform' : 'tenant', version: table.version } };
  }
}
