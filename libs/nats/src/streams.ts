import { DiscardPolicy, RetentionPolicy, StorageType, type NatsConnection, type StreamConfig, type StreamInfo } from 'nats';
import { DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, EVENTS_PREFIX, EVENTS_STREAM } from '@palisade/contracts';

const nanos = (ms: number) => ms * 1_000_000;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

export interface StreamOptions {
  /** JetStream replicas: 1 on one host, 3 on a cluster. */
  replicas?: number;
}

/**
 * PALISADE_EVENTS holds every platform event for 30 days. Its duplicate window (1 h)
 * is the outbox relay's idempotency window: an event republished within it by id
 * (`Nats-Msg-Id`) is stored once. Messages cannot be deleted one by one.
 */
export function streamConfigs(options: StreamOptions = {}): Partial<StreamConfig>[] {
  const replicas = options.replicas ?? 1;
  return [
    {
      name: EVENTS_STREAM,
      subjects: [`${EVENTS_PREFIX}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(HOUR),
      max_age: nanos(30 * DAY),
      max_msg_size: 1024 * 1024,
      num_replicas: replicas,
      deny_delete: true,
    },
    {
      name: DEAD_LETTER_STREAM,
      subjects: [`${DEAD_LETTER_PREFIX}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(HOUR),
      max_age: nanos(30 * DAY),
      max_msg_size: 1024 * 1024,
      num_replicas: replicas,
      deny_delete: true,
    },
  ];
}

const UPDATABLE: (keyof StreamConfig)[] = ['subjects', 'duplicate_window', 'max_age', 'max_msg_size', 'discard', 'deny_delete'];

/**
 * Create the platform streams, or bring an existing one to the configuration above.
 * Needs the admin identity: services may not create, change, purge or delete streams.
 */
export async function ensureStreams(nc: NatsConnection, options: StreamOptions = {}): Promise<StreamInfo[]> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  const infos: StreamInfo[] = [];
  for (const config of streamConfigs(options)) {
    let existing: StreamInfo | undefined;
    try {
      existing = await jsm.streams.info(config.name!);
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
    }
    if (!existing) {
      infos.push(await jsm.streams.add(config));
      continue;
    }
    const drift = UPDATABLE.filter((k) => JSON.stringify(existing.config[k]) !== JSON.stringify(config[k]));
    infos.push(drift.length ? await jsm.streams.update(config.name!, { ...existing.config, ...config }) : existing);
  }
  return infos;
}
