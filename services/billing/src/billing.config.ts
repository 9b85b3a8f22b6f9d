import { z } from 'zod';
import { env, loadConfig } from '@palisade/config';

/** The billing service's own settings (besides those every service reads). */
export const billingConfigShape = {
  /** How often holds past their TTL are released (`billing.hold.expired`). */
  BILLING_SWEEP_INTERVAL_MS: env.int(1000, 50, 60000),
  /**
   * Ledger batches that may commit at once (each on its own connection). 1 by default:
   * every reservation of a tenant with a tenant budget locks that one row, so parallel
   * batches only queue on it; one lane makes the next batch larger instead (measured:
   * README, Performance).
   */
  BILLING_LEDGER_LANES: env.int(1, 1, 32),
  /** Ledger operations per batch (one transaction) at most. */
  BILLING_LEDGER_MAX_BATCH: env.int(256, 1, 1000),
  /** How long which budgets exist is remembered by the ledger (limits always apply at once; see LedgerService). */
  BILLING_BUDGET_CACHE_MS: env.int(1000, 0, 60000),
  /** ISO 4217 currency of the µ-units in reports (BillingCurrency in FOCUS); per-tenant currencies: README, gaps. */
  BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code, e.g. USD').default('USD'),
};

export type BillingConfig = { BILLING_SWEEP_INTERVAL_MS: number; BILLING_LEDGER_LANES: number; BILLING_LEDGER_MAX_BATCH: number; BILLING_CURRENCY: string; BILLING_BUDGET_CACHE_MS: number };

export const BILLING_CONFIG = Symbol('billing.config');

/** Validated at start, naming every bad variable. */
export function loadBillingConfig(source: NodeJS.ProcessEnv = process.env): BillingConfig {
  return loadConfig(billingConfigShape, source) as unknown as BillingConfig;
}
