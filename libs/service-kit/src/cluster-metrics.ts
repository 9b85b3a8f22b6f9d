import cluster from 'node:cluster';
import { PalisadeError } from '@palisade/contracts';
import { AggregatorRegistry, type Registry } from '@palisade/observability';
import { siblings } from './siblings';

/** What a worker answers when a sibling gathers the service's metrics (bootstrap registers it: its registry as JSON). */
export const METRICS_TOPIC = 'palisade:metrics';

/**
 * The metrics a scrape gets: this process's registry, or in a cluster worker the whole
 * service's, not the one worker's that took the scrape's connection: every listening
 * worker's registry gathered through the primary (`siblings().gather`) and summed by
 * prom-client (counters, histograms; gauges by each one's aggregator, summed unless it
 * says otherwise). 503 when a worker gave none: a partial sum would make counters drop.
 */
export async function scrapeMetrics(registry: Registry): Promise<string> {
  if (!cluster.isWorker) return registry.metrics();
  const answers = await siblings().gather(METRICS_TOPIC, null);
  const failed = answers.find((a) => a.error !== undefined || !Array.isArray(a.value));
  if (failed) throw new PalisadeError('unavailable', `the workers' metrics could not be gathered (worker ${failed.worker}: ${failed.error ?? 'no metrics'}): scrape again`);
  return AggregatorRegistry.aggregate(answers.map((a) => a.value as object[])).metrics();
}
