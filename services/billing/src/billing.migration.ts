import { ledgerMigration } from './ledger/ledger.migration';

/** The billing service's migrations, in order. */
export const billingMigrations = [ledgerMigration] as const;
