import { Module } from '@nestjs/common';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { BILLING_CONFIG, loadBillingConfig, type BillingConfig } from './billing.config';
import { BILLING_SERVICES, BillingRuntime } from './billing.runtime';
import { BudgetsController } from './budgets/budgets.controller';
import { LedgerRpc } from './ledger/ledger.rpc';
import { MeteringConsumers } from './metering/metering.consumer';
import { PricesController } from './prices/prices.controller';
import { ReportsController } from './reports/reports.controller';

/**
 * The billing service: the ledger (reserve → settle → release over NATS for the router and
 * the orchestrator), budgets and their status over HTTP for people. Health, metrics, docs,
 * the event store, the outbox and NATS come from @palisade/service-kit.
 */
@Module({
  controllers: [BudgetsController, PricesController, ReportsController],
  providers: [
    { provide: BILLING_CONFIG, useFactory: () => loadBillingConfig() },
    { provide: BillingRuntime, useFactory: (platform: Platform, config: BillingConfig) => new BillingRuntime(platform, config), inject: [PLATFORM, BILLING_CONFIG] },
    { provide: BILLING_SERVICES, useFactory: (runtime: BillingRuntime) => () => runtime.services, inject: [BillingRuntime] },
    {
      provide: MeteringConsumers,
      useFactory: (platform: Platform, runtime: BillingRuntime) => new MeteringConsumers(platform, () => runtime.services.ledger, () => platform.eventStore!),
      inject: [PLATFORM, BillingRuntime],
    },
    { provide: LedgerRpc, useFactory: (platform: Platform, runtime: BillingRuntime) => new LedgerRpc(platform, () => runtime.services.ledger, () => runtime.services.prices), inject: [PLATFORM, BillingRuntime] },
  ],
})
export class BillingModule {}
