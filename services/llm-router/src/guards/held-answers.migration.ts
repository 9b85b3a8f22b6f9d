import { sqlMigration } from '@palisade/postgres';

/** Answers held for review (guards/held-answers.repository.ts): deleted at release or expiry. */
export const heldAnswersMigration = sqlMigration('LlmRouterHeldAnswers1764900000003', (s, app) => [
  `CREATE TABLE ${s}.held_answers (
     tenant_id  text NOT NULL,
     held_id    text NOT NULL,
     api        text NOT NULL,
     body       jsonb NOT NULL,
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, held_id)
   )`,
  `CREATE INDEX held_answers_expiry ON ${s}.held_answers (expires_at)`,
  `GRANT SELECT, INSERT, DELETE ON ${s}.held_answers TO ${app}`,
]);
