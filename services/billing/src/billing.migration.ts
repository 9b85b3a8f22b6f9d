import { ledgerFillfactorMigration, ledgerMigration, ledgerUsageRevisionsMigration, ledgerUserBudgetsMigration } from './ledger/ledger.migration';

/** The billing service's migrations, in order. */
export const billingMigrations = [ledgerMigration, ledgerFillfactorMigration, ledgerUserBudgetsMigration, ledgerUsageRevisionsMigration] as const;
