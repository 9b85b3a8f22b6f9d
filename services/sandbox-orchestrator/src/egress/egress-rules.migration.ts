import { sqlMigration } from '@palisade/postgres';

/**
 * Egress rule sets (read model of `egress_rules-<tenant>.<scope>`, kept in the transaction
 * of its events): per tenant and scope (`tenant`, `agent:<id>`, `session:<id>`) the rules
 * and the stream version (ETag). A removed set keeps its row (status `removed`) so that its
 * version goes on.
 */
export const egressRulesMigration = sqlMigration('SandboxEgressRules1764950000001', (s, app) => [
  `CREATE TABLE ${s}.egress_rule_sets (
     tenant_id  text NOT NULL,
     scope      text NOT NULL,
     rules      jsonb NOT NULL,
     status     text NOT NULL CHECK (status IN ('set', 'removed')),
     version    integer NOT NULL,
     updated_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, scope)
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.egress_rule_sets TO ${app}`,
]);
