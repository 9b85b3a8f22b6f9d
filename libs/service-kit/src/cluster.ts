import cluster, { type Worker } from 'node:cluster';
import { ConfigError } from '@palisade/config';
import type { Logger } from '@palisade/observability';
import { EXIT_CONFIG } from './config';
import { relayBetweenWorkers } from './siblings';

/** A service that may run as several worker processes behind its one port (node:cluster). */
export interface WorkersOption {
  /** The variable that sets the count, e.g. `LLM_ROUTER_WORKERS`. */
  env: string;
  /** The count when the variable is unset. */
  default: () => number;
}

export const MAX_WORKERS = 16;

/** The number of worker processes: the variable's value (an integer 1..16), else the default; 1 is one process, no cluster. */
export function workerCount(option: WorkersOption | undefined, source: NodeJS.ProcessEnv = process.env): number {
  if (!option) return 1;
  const raw = source[option.env];
  if (raw === undefined || raw.trim() === '') return Math.min(MAX_WORKERS, Math.max(1, Math.floor(option.default())));
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_WORKERS) {
    throw new ConfigError([`${option.env}: must be an integer from 1 to ${MAX_WORKERS} (got ${JSON.stringify(raw)})`]);
  }
  return n;
}

/** Sent by the primary to a worker once the migrations have run (workers do not run them). */
export const MIGRATED_MESSAGE = 'palisade:migrated';

/** In a worker: resolves once the primary says the database is migrated. */
export function migratedByPrimary(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (message !== MIGRATED_MESSAGE) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** Runs the migrations once (retrying until they succeed, or throwing once stopped). */
  migrate: (stopped: () => boolean) => Promise<void>;
  /** How long workers get to stop after SIGTERM before they are killed. */
  stopTimeoutMs?: number;
  /** Workers that die before listening, one after another, past which the primary gives up. */
  maxStartupFailures?: number;
  exit?: (code: number) => void;
}

/** The workers not yet dead. */
function aliveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
}

/**
 * The cluster's primary: forks the workers at once (each connects once told the database
 * is migrated, and listens once connected), runs the migrations once and tells every worker, restarts a worker
 * that dies (backoff: 100 ms doubling per exit in the last minute, at most 10 s), gives
 * up when workers keep dying before they listen, relays what workers broadcast to and
 * gather from each other (siblings.ts), and on SIGTERM/SIGINT passes SIGTERM
 * on and waits (bounded) for every worker's graceful stop.
 */
export function runPrimary(options: PrimaryOptions): void {
  const { logger } = options;
  const stopTimeoutMs = options.stopTimeoutMs ?? 20_000;
  const maxStartupFailures = options.maxStartupFailures ?? 5;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const listening = new WeakSet<Worker>();
  const recentExits: number[] = [];
  let startupFailures = 0;
  let migrated = false;
  let stopping = false;

  const fork = () => {
    if (stopping) return;
    const worker = cluster.fork();
    worker.once('listening', () => {
      listening.add(worker);
      startupFailures = 0;
    });
    // a worker forked after the migrations ran is told once it runs (its main() listens for it from the start)
    worker.once('online', () => {
      if (migrated) worker.send(MIGRATED_MESSAGE);
    });
  };

  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const alive = aliveWorkers();
    logger.info({ workers: alive.length }, 'stopping workers');
    const timer = setTimeout(() => {
      const left = aliveWorkers();
      logger.error({ workers: left.length, afterMs: stopTimeoutMs }, 'workers did not stop in time; killed');
      for (const w of left) w.process.kill('SIGKILL');
      logger.flush();
      exit(code || 1);
    }, stopTimeoutMs);
    void Promise.all(alive.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : (w.once('exit', () => resolve()), w.process.kill('SIGTERM')))))).then(() => {
      clearTimeout(timer);
      logger.info('workers stopped');
      logger.flush();
      exit(code);
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    recentExits.push(now);
    while (recentExits.length > 0 && recentExits[0] < now - 60_000) recentExits.shift();
    const started = listening.has(worker);
    if (!started) startupFailures++;
    logger.error({ worker: worker.id, pid: worker.process.pid, code, signal, listening: started }, 'worker exited');
    // a worker with bad configuration: restarting it cannot help
    if (code === EXIT_CONFIG) {
      logger.fatal('a worker refused its configuration; stopping');
      return stop(EXIT_CONFIG);
    }
    if (startupFailures >= maxStartupFailures) {
      logger.fatal({ startupFailures }, 'workers keep dying before they listen; stopping');
      return stop(1);
    }
    const delayMs = Math.min(100 * 2 ** (recentExits.length - 1), 10_000);
    logger.warn({ delayMs }, 'starting a new worker');
    setTimeout(fork, delayMs);
  });

  // what a worker broadcasts or gathers (siblings.ts: changes, readiness, metrics) reaches the others that listen
  relayBetweenWorkers(() => aliveWorkers().filter((w) => listening.has(w)));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop(0));
  logger.info({ workers: options.workers }, 'starting workers');
  for (let i = 0; i < options.workers; i++) fork();
  options.migrate(() => stopping).then(
    () => {
      migrated = true;
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(MIGRATED_MESSAGE);
    },
    (error: Error) => {
      if (!stopping) {
        logger.fatal({ err: error.message }, 'migrations failed');
        stop(1);
      }
    },
  );
}
