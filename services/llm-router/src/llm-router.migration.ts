import type { MigrationFactory } from '@palisade/service-kit';
import { rateLimitsMigration } from './budgets/rate-limits.migration';
import { catalogMigration } from './catalog/catalog.migration';
import { heldAnswersMigration } from './guards/held-answers.migration';

/** The service's migrations, one per context, in order (after the event store's). Model calls keep no table of their own: their events are the record. */
export const llmRouterMigrations: readonly MigrationFactory[] = [catalogMigration, rateLimitsMigration, heldAnswersMigration];
