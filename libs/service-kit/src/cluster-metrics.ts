import cluster from 'node:cluster';
import { PalisadeError } from '@palisade/contracts';
import { AggregatorRegistry, type Registry } from '@palisade/observability';

/**
 * `GET /metrics` of a service run as workers (cluster.ts) says what the whole service did,
 * not what the one worker that took the scrape's connection did: the worker asks the
 * primary, which gathers every worker's registry (prom-client's AggregatorRegistry, over
 * the cluster's IPC) and sums them (counters, histograms; gauges by prom-client's
 * aggregator for each, summed unless it says otherwise).
 */

interface MetricsAsked {
  palisade: 'cluster-metrics';
  id: number;
}
interface MetricsGiven {
  palisade: 'cluster-metrics-given';
  id: number;
  text?: string;
  error?: string;
}

const WORKER_TIMEOUT_MS = 10_000;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
let asked = 0;
let answering = false;

/** The metrics a scrape gets: this process's registry, or in a cluster worker the whole cluster's (503 when they cannot be gathered). */
export function scrapeMetrics(registry: Registry): Promise<string> {
  if (!cluster.isWorker || !process.send) return registry.metrics();
  answerPrimary(registry);
  const id = ++asked;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new PalisadeError('unavailable', 'the workers\' metrics were not gathered in time: scrape again'));
    }, WORKER_TIMEOUT_MS);
    waiting.set(id, { resolve, reject, timer });
    process.send!({ palisade: 'cluster-metrics', id } satisfies MetricsAsked);
  });
}

/** In a worker, from its start (bootstrap): its registry is what the primary gathers, and the primary's answers reach the scrape that asked. */
export function answerPrimary(registry: Registry): void {
  if (answering || !cluster.isWorker) return;
  answering = true;
  AggregatorRegistry.setRegistries([registry]);
  // constructing one adds prom-client's worker-side listener (answers the primary's requests for this registry)
  new AggregatorRegistry();
  process.on('message', (message: unknown) => {
    const given = message as Partial<MetricsGiven> | null;
    if (given?.palisade !== 'cluster-metrics-given' || typeof given.id !== 'number') return;
    const w = waiting.get(given.id);
    if (!w) return;
    waiting.delete(given.id);
    clearTimeout(w.timer);
    if (typeof given.text === 'string') w.resolve(given.text);
    // a worker that is starting (forked, not yet answering) fails the gathering: prom-client's 5 s
    else w.reject(new PalisadeError('unavailable', `the workers' metrics could not be gathered (${given.error ?? 'no answer'}): scrape again`));
  });
}

/** The primary's part (runPrimary): a worker's scrape is answered with every worker's metrics, summed. */
export function gatherMetricsForWorkers(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    const ask = message as Partial<MetricsAsked> | null;
    if (ask?.palisade !== 'cluster-metrics' || typeof ask.id !== 'number') return;
    const id = ask.id;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ palisade: 'cluster-metrics-given', id, text } satisfies MetricsGiven),
      (error: Error) => worker.isConnected() && worker.send({ palisade: 'cluster-metrics-given', id, error: error.message } satisfies MetricsGiven),
    );
  });
}
