import { availableParallelism } from 'node:os';
import { main, packageVersion } from '@palisade/service-kit';
import { llmRouterMigrations } from './llm-router.migration';
import { LlmRouterModule } from './llm-router.module';

main({
  name: 'llm-router',
  version: packageVersion(__dirname),
  description: 'Every model call: compliance routing, PII masking, injection guards, circuit breakers, budgets checked first.',
  module: LlmRouterModule,
  migrations: llmRouterMigrations,
  // agents' SDKs may carry one of auth's API keys instead of a token (tenant and agent from the key)
  apiKeys: true,
  // an agent presents the same token on every call: its signature is checked once per 5 s (revocation on every call)
  verifiedTokenCache: { ttlMs: 5_000, max: 10_000 },
  // One process's main thread tops out near 1,250 calls/s at 256 in flight (issue 14); workers share the port,
  // a change made through one drops the others' cached copies before it is answered (TenantChanges), and a
  // scrape of /metrics through any of them counts all. Up to 4 (measured on 2 cores: README "Workers").
  workers: { env: 'LLM_ROUTER_WORKERS', default: () => Math.min(availableParallelism(), 4) },
});
