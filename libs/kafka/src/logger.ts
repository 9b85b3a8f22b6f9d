import { logLevel, type logCreator, type LogEntry } from 'kafkajs';

/** The minimal, pino-compatible logger the adapter writes to. */
export interface KafkaLogger {
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: KafkaLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

export const KAFKAJS_LOG_LEVELS: Record<KafkaLogLevel, logLevel> = {
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/** Members a kafkajs log entry may carry that are worth keeping; anything else is dropped. */
const KEPT = new Set([
  'broker',
  'clientId',
  'groupId',
  'memberId',
  'generationId',
  'topic',
  'topics',
  'partition',
  'partitions',
  'offset',
  'retryCount',
  'retryTime',
  'correlationId',
  'apiName',
  'apiKey',
  'apiVersion',
  'error',
  'type',
  'code',
  'retriable',
  'transactionalId',
  'producerId',
  'producerEpoch',
  'size',
  'duration',
  'expectResponse',
  'createdAt',
  'sentAt',
  'pendingDuration',
  'stack',
]);
const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;

function scrub(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(PEM, '[redacted PEM]');
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (Array.isArray(value)) return value.slice(0, 50).map(scrub).filter((v) => v !== undefined);
  // Objects (configs, requests, buffers) never reach the log: they could hold keys,
  // SASL credentials or record payloads.
  return undefined;
}

/**
 * The members of a kafkajs log entry that go to our log: an allow-list of
 * diagnostics (broker, topic, partition, error, ...). Record payloads, TLS and SASL
 * material never do, and any PEM block inside a kept string is redacted.
 */
export function sanitizeLogEntry(log: LogEntry['log']): { msg: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(log)) {
    if (!KEPT.has(key)) continue;
    const clean = scrub(value);
    if (clean !== undefined) fields[key] = clean;
  }
  return { msg: String(scrub(log.message) ?? ''), fields };
}

/** A kafkajs `logCreator` writing to `logger`, each entry tagged with its kafkajs namespace. */
export function kafkaLogCreator(logger: KafkaLogger): logCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { msg, fields } = sanitizeLogEntry(log);
      const obj = { component: 'kafkajs', namespace, ...fields };
      switch (level) {
        case logLevel.ERROR:
          logger.error(obj, msg);
          break;
        case logLevel.WARN:
          logger.warn(obj, msg);
          break;
        case logLevel.INFO:
          logger.info(obj, msg);
          break;
        default:
          logger.debug?.(obj, msg);
      }
    };
}
