import { ledgerFillfactorMigration, ledgerMigration } from './ledger/ledger.migration';

/** The billing service's migrations, in order. */
export const billingMigrations = [ledgerMigration, ledgerFillfactorMigration] as const;
