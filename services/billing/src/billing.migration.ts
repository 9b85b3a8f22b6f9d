import { ledgerFillfactorMigration, ledgerMigration, ledgerRememberedRowsMigration, ledgerUsageRevisionsMigration, ledgerUserBudgetsMigration } from './ledger/ledger.migration';

/** The billing service's migrations, in order. */
export const billingMigrations = [ledgerMigration, ledgerFillfactorMigration, ledgerUserBudgetsMigration, ledgerUsageRevisionsMigration, ledgerRememberedRowsMigration] as const;
