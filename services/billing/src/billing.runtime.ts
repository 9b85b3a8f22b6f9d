import { PalisadeError } from '@palisade/contracts';
import type { Platform } from '@palisade/service-kit';
import type { BillingConfig } from './billing.config';
import { BudgetsRepository } from './budgets/budgets.repository';
import { BudgetsService } from './budgets/budgets.service';
import { LedgerRepository } from './ledger/ledger.repository';
import { LedgerService } from './ledger/ledger.service';
import { LedgerSweeper } from './ledger/ledger.sweeper';
import { PricesRepository } from './prices/prices.repository';
import { PricesService } from './prices/prices.service';
import { ReportsRepository } from './reports/reports.repository';
import { ReportsService } from './reports/reports.service';

export const BILLING_SERVICES = Symbol('billing.services');

export interface BillingServices {
  ledger: LedgerService;
  budgets: BudgetsService;
  reports: ReportsService;
  prices: PricesService;
}

/**
 * Builds the billing services once the platform is connected (the data source and the
 * event store exist only then) and runs the hold sweeper. Only the module reads it.
 */
export class BillingRuntime {
  private current: BillingServices | undefined;
  private sweeper: LedgerSweeper | undefined;

  constructor(
    private readonly platform: Platform,
    private readonly config: BillingConfig,
  ) {
    platform.afterConnect(async () => this.start());
    platform.beforeClose(async () => this.sweeper?.stop());
  }

  get services(): BillingServices {
    if (!this.current) throw new PalisadeError('unavailable', 'billing is starting');
    return this.current;
  }

  private start(): void {
    if (this.current) return;
    const p = this.platform;
    const schema = p.options.config.PG_SCHEMA;
    const ledger = new LedgerService({
      repo: new LedgerRepository(p.dataSource!, schema),
      eventContext: p.eventContext,
      lanes: this.config.BILLING_LEDGER_LANES,
      maxBatch: this.config.BILLING_LEDGER_MAX_BATCH,
      budgetCacheMs: this.config.BILLING_BUDGET_CACHE_MS,
    });
    this.current = {
      ledger,
      budgets: new BudgetsService(p.eventStore!, new BudgetsRepository(schema), p.eventContext, undefined, () => ledger.forgetBudgets()),
      prices: new PricesService(p.eventStore!, new PricesRepository(p.dataSource!, schema), p.eventContext),
      reports: new ReportsService(new ReportsRepository(p.dataSource!, schema), p.eventStore!, p.eventContext, this.config.BILLING_CURRENCY),
    };
    this.sweeper = new LedgerSweeper(ledger, this.config.BILLING_SWEEP_INTERVAL_MS, p.logger);
    this.sweeper.start();
  }
}
