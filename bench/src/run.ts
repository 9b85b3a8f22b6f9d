import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditBenchmark } from './audit.bench';
import { authBenchmark } from './auth.bench';
import { billingBenchmark } from './billing.bench';
import { credentialBenchmark } from './credential.bench';
import { llmRouterBenchmark } from './llm-router.bench';
import { outboxBenchmark } from './outbox.bench';
import { policyBenchmark } from './policy.bench';
import { sandboxBenchmark } from './sandbox.bench';

/** A benchmark prints nothing itself; it returns its metrics by name. */
export type Benchmark = () => Promise<Record<string, number>>;

const BENCHMARKS: Record<string, Benchmark> = {
  credential: credentialBenchmark,
  audit: auditBenchmark,
  outbox: outboxBenchmark,
  policy: policyBenchmark,
  auth: authBenchmark,
  sandbox: sandboxBenchmark,
  'llm-router': llmRouterBenchmark,
  billing: billingBenchmark,
};

async function main(): Promise<void> {
  const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = requested.filter((name) => !BENCHMARKS[name]);
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
    process.exit(2);
  }
  const names = requested.length > 0 ? requested : Object.keys(BENCHMARKS);
  const resultsDir = join(__dirname, '..', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const summary: Array<Record<string, string | number>> = [];
  for (const name of names) {
    console.log(`== ${name}`);
    const results = await BENCHMARKS[name]();
    const record = { name, at: new Date().toISOString(), node: process.version, results };
    writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
    for (const [metric, value] of Object.entries(results)) summary.push({ benchmark: name, metric, value });
  }
  console.table(summary);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
