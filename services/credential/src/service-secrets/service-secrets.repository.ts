import type { EventEnvelope } from '@palisade/contracts';
import { CredentialRepository, validateAll } from '../credential.repository';

/** The record of a service reading its own secret (no lease). */
export class ServiceSecretsRepository extends CredentialRepository {
  /**
   * Records a service's read of a secret in one statement, only while the secret is active
   * at the version read and the KEK wrapping it is neither revoked nor retired (both rows
   * share-locked, as for redemptions: a re-check for concurrency, the rule itself is
   * `decideRead` in service-secrets.policy.ts). The event opens its own stream
   * `secret-read-<event id>`, so reads never contend with each other or move the secret's
   * ETag. Answers whether it was recorded.
   */
  async commitServiceRead(w: { tenantId: string; secretId: string; version: number; kekVersion: number; event: EventEnvelope }): Promise<boolean> {
    validateAll([w.event]);
    const { rows } = await this.pool().query(
      `WITH live AS (
         SELECT s.secret_id FROM ${this.t.secrets} s
           JOIN ${this.t.kek} k ON k.tenant_id = s.tenant_id AND k.version = $4
          WHERE s.tenant_id = $1 AND s.secret_id = $2 AND s.state = 'active' AND s.current_version = $3 AND k.state IN ('active', 'retiring')
          FOR SHARE OF s, k
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'secret-read-' || $5::text, 1, $5::uuid, $6, $1, $7::jsonb FROM live
         RETURNING stream_id
       )
       SELECT count(*)::int AS n FROM appended`,
      [w.tenantId, w.secretId, w.version, w.kekVersion, w.event.id, w.event.type, JSON.stringify(w.event)],
    );
    return (rows[0]?.n as number) === 1;
  }
}
