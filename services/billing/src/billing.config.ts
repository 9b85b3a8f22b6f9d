import { env, loadConfig } from '@palisade/config';

/** The billing service's own settings (besides those every service reads). */
export const billingConfigShape = {
  /** How often holds past their TTL are released (`billing.hold.expired`). */
  BILLING_SWEEP_INTERVAL_MS: env.int(1000, 50, 60000),
  /** Ledger batches that may commit at once (each on its own connection). */
  BILLING_LEDGER_LANES: env.int(4, 1, 32),
  /** Ledger operations per batch (one transaction) at most. */
  BILLING_LEDGER_MAX_BATCH: env.int(64, 1, 1000),
};

export type BillingConfig = { BILLING_SWEEP_INTERVAL_MS: number; BILLING_LEDGER_LANES: number; BILLING_LEDGER_MAX_BATCH: number };

export const BILLING_CONFIG = Symbol('billing.config');

/** Validated at start, naming every bad variable. */
export function loadBillingConfig(source: NodeJS.ProcessEnv = process.env): BillingConfig {
  return loadConfig(billingConfigShape, source) as unknown as BillingConfig;
}
