import { ledgerFillfactorMigration, ledgerMigration, ledgerRememberedRowsMigration, ledgerUsageRevisionsMigration, ledgerUserBudgetsMigration, ledgerWriteAccountsFirstMigration, ledgerWriteFunctionMigration, ledgerWritePositionalMigration, ledgerAllotmentsMigration, ledgerAllotmentAmountCheckMigration } from './ledger/ledger.migration';

/** The billing service's migrations, in order. */
export const billingMigrations = [ledgerMigration, ledgerFillfactorMigration, ledgerUserBudgetsMigration, ledgerUsageRevisionsMigration, ledgerRememberedRowsMigration, ledgerWriteFunctionMigration, ledgerWritePositionalMigration, ledgerWriteAccountsFirstMigration, ledgerAllotmentsMigration, ledgerAllotmentAmountCheckMigration] as const;
