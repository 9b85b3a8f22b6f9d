import { join } from 'node:path';
import { z } from 'zod';
import { env, loadConfig } from '@palisade/config';
import { CHECKPOINT_ALGORITHMS, DEFAULT_AUDIT_TOPIC, DEFAULT_CHECKPOINT_TOPIC } from '@palisade/audit-log';

const TOPIC = /^palisade\.audit\.[A-Za-z0-9._-]{1,200}$/;
const DAY_MS = 24 * 3600 * 1000;

/** The audit service's own settings (README "Configuration"), on top of every service's. */
export const auditConfigShape = {
  KAFKA_BROKERS: env.hostPorts(),
  /** The hash-chained audit topic. */
  AUDIT_TOPIC: z.string().regex(TOPIC, 'must be a Kafka topic name starting with palisade.audit.').default(DEFAULT_AUDIT_TOPIC),
  AUDIT_CHECKPOINT_TOPIC: z.string().regex(TOPIC, 'must be a Kafka topic name starting with palisade.audit.').default(DEFAULT_CHECKPOINT_TOPIC),
  /** Partitions of a topic the service creates (an existing topic keeps its own). */
  AUDIT_PARTITIONS: env.int(3, 1, 1000),
  AUDIT_REPLICATION_FACTOR: env.int(1, 1, 10),
  /** Production: replication factor 3, min.insync.replicas 2. */
  AUDIT_MIN_INSYNC_REPLICAS: env.int(1, 1, 10),
  AUDIT_RETENTION_MS: env.int(365 * DAY_MS, 3600 * 1000, 100 * 365 * DAY_MS),
  /** The JetStream durable is `audit-<AUDIT_CONSUMER>` (listed in deploy/local/nats-durables.txt). */
  AUDIT_CONSUMER: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, 'lowercase letters, digits and "-"').default('ingest'),
  /** Where a newly created durable starts: every stored event (`all`) or those published from now on (`new`). */
  AUDIT_DELIVER_POLICY: z.enum(['all', 'new']).default('all'),
  /** How long JetStream waits for an acknowledgement before redelivering to another instance. */
  AUDIT_ACK_WAIT_MS: env.int(30_000, 1000, 600_000),
  /** Largest number of events chained in one Kafka transaction. */
  AUDIT_BATCH_MAX: env.int(2000, 1, 20_000),
  /** SIEM feeds: longest wait between two delivery attempts (exponential backoff with jitter). */
  AUDIT_FEED_RETRY_MAX_MS: env.int(30_000, 100, 600_000),
  /** SIEM feeds: most events per HEC request or syslog write. */
  AUDIT_FEED_BATCH_MAX: env.int(500, 1, 10_000),
  /**
   * SIEM feeds may deliver to loopback, link-local and unspecified addresses (`true`:
   * single-host test set-ups only; default `false`).
   */
  AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS: env.bool(false),
  /**
   * Transport keys (README "Personal data"): a new X25519 key producers seal personal data
   * to after this long (default 1 day; producers learn it within 5 minutes). Together with
   * the grace period it bounds how long erasure leaves producers' copies readable (README
   * "Erasure": at most 2 x rotation + grace after the transport key's creation).
   */
  AUDIT_TRANSPORT_KEY_ROTATION_MS: env.int(DAY_MS, 60_000, 365 * DAY_MS),
  /**
   * How long a transport private key is kept after the last instant producers may seal to
   * it (two rotation periods after its creation): at least the longest an event may wait
   * in a producer's outbox or JetStream (default 7 days). Then it is destroyed, and
   * members still sealed to it are refused at ingest (the event is not chained; audit's
   * forgery report takes its place). Until then audit can open the transport-sealed copies
   * producers and JetStream keep, even of an erased subject: with the defaults at most
   * 9 days (2 x 1 day + 7 days) after the key's creation.
   */
  AUDIT_TRANSPORT_KEY_GRACE_MS: env.int(7 * DAY_MS, 60_000, 365 * DAY_MS),
  /** How often each instance checks whether the transport key is due for rotation or destruction. */
  AUDIT_TRANSPORT_KEY_CHECK_MS: env.int(60_000, 1000, DAY_MS),
  /** Most per-subject keys the writer keeps in memory (least recently used forgotten first). */
  AUDIT_SUBJECT_KEY_CACHE_MAX: env.int(10_000, 1, 1_000_000),
  /**
   * How checkpoints are signed: `ed25519` (audit log format version 1) or `sm2` (SM2 with
   * SM3, services/audit/docs/audit-log-format-addendum-sm2.md). Changing it rotates the
   * signing key at the next start; keys of the other algorithm stay published.
   */
  AUDIT_CHECKPOINT_ALGORITHM: z.enum(CHECKPOINT_ALGORITHMS).default('ed25519'),
  /** Key-encryption key file (32 random bytes, base64); created with mode 0600 when missing. */
  AUDIT_KEK_FILE: env.path().optional(),
  PALISADE_HOME: z.string().optional(),
};

export type AuditConfig = Omit<z.infer<z.ZodObject<typeof auditConfigShape>>, 'AUDIT_KEK_FILE'> & { AUDIT_KEK_FILE: string };

export function loadAuditConfig(source: NodeJS.ProcessEnv = process.env): AuditConfig {
  const config = loadConfig(auditConfigShape, source);
  const kekFile = config.AUDIT_KEK_FILE ?? (config.PALISADE_HOME ? join(config.PALISADE_HOME, 'audit', 'kek.key') : undefined);
  if (!kekFile) {
    return loadConfig({ ...auditConfigShape, AUDIT_KEK_FILE: env.path() }, source) as AuditConfig;
  }
  return { ...config, AUDIT_KEK_FILE: kekFile };
}
