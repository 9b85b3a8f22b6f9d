import { feedsClientKeyMigration } from './feeds/feeds-client-key.migration';
import { feedsMigration } from './feeds/feeds.migration';
import { indexDropOffsetMigration } from './ingest/index-drop-offset.migration';
import { indexQuarantineMigration } from './ingest/index-quarantine.migration';
import { indexRebuildMigration } from './ingest/index-rebuild.migration';
import { ingestMigration } from './ingest/ingest.migration';
import { transportKeysMigration } from './keys/transport-keys.migration';
import { subjectErasuresMigration } from './subjects/subject-erasures.migration';

/**
 * The audit service's migrations, in the order they ran (each keeps the name it had when
 * databases first ran it; a renamed migration would run again).
 */
export const auditMigrations = [ingestMigration, indexRebuildMigration, feedsMigration, feedsClientKeyMigration, indexQuarantineMigration, transportKeysMigration, indexDropOffsetMigration, subjectErasuresMigration];
