import { Module } from '@nestjs/common';
import { PalisadeError } from '@palisade/contracts';
import { PLATFORM, siblings, type Platform } from '@palisade/service-kit';
import { EventBroadcastSubscription } from '@palisade/nats';
import { eventsAppendedRinger, pgPoolOf } from '@palisade/postgres';
import { AllottingBilling } from './budgets/allotting-billing';
import { NatsBillingAdapter } from './budgets/billing.nats';
import { SETTLE_BATCH_MAX, SettleBatcher } from './budgets/settle-batcher';
import { PgRateLimits } from './budgets/rate-limits';
import { CatalogController } from './catalog/catalog.controller';
import { CatalogRepository } from './catalog/catalog.repository';
import { CatalogService } from './catalog/catalog.service';
import { AnthropicController, OpenAiController } from './completions/completions.controller';
import { CompletionsService } from './completions/completions.service';
import { GuardPipeline } from './guards/guard-pipeline';
import { GuardPolicyController } from './guards/guard-policy.controller';
import { GuardPolicyService } from './guards/guard-policy.service';
import { HeldAnswersController } from './guards/held-answers.controller';
import { HeldAnswersRepository } from './guards/held-answers.repository';
import { HeldAnswersService } from './guards/held-answers.service';
import { PiiDetector } from './guards/pii.detector';
import { PolicyToolAllowlist } from './guards/tool-allowlist';
import { policyClientOnceConnected } from '@palisade/policy-client';
import { loadLlmRouterConfig, type LlmRouterConfig } from './llm-router.config';
import { CATALOG_SERVICE, COMPLETIONS_SERVICE, GUARD_POLICY_SERVICE, HELD_ANSWERS_SERVICE, ROUTER_CONFIG, type Ready } from './llm-router.tokens';
import { ModelCallsService } from './model-calls/model-calls.service';
import { VaultProviderKeys } from './providers/provider-keys';
import { CONFIG_EVENT_FEEDS, TenantChanges } from './tenant-changes';
import { Upstream } from './providers/upstream';
import type { CountryCode } from 'libphonenumber-js';

/** The longest shutdown waits for settle requests under way (the unrecorded calls' retries take ~3 s in all). */
const SETTLE_DRAIN_MS = 5000;

interface Services {
  catalog: CatalogService;
  completions: CompletionsService;
  guardPolicies: GuardPolicyService;
  held: HeldAnswersService;
  changes: TenantChanges;
}

/** The router's services, once the event store, the data source and NATS exist. */
function servicesFor(platform: Platform, config: LlmRouterConfig): Ready<Services> {
  let services: Services | undefined;
  // tool allowlists are the policy service's (its cache follows policy events: durable llm-router-policy-cache)
  const policy = policyClientOnceConnected(platform, 'llm-router');
  platform.afterConnect(async (p) => {
    if (services) return;
    const keys = new VaultProviderKeys({ nats: () => p.nats, cacheMs: config.providerKeyCacheMs, timeoutMs: config.vaultTimeoutMs });
    // a change through this worker drops the tenant's cached copies in its siblings (LLM_ROUTER_WORKERS) before it is answered
    const changes = new TenantChanges(siblings(), p.logger);
    changes.onChange((tenantId) => keys.forgetTenant(tenantId));
    const catalog = new CatalogService({ store: p.eventStore!, repo: new CatalogRepository(p.dataSource!), eventContext: p.eventContext, cacheMs: config.catalogCacheMs, changes, keys, logger: p.logger });
    const upstream = new Upstream({ connectTimeoutMs: config.providerConnectTimeoutMs });
    const modelCalls = new ModelCallsService(p.eventStore!, p.eventContext, undefined, p.personalSealer, (records, error) =>
      p.logger.warn({ records, err: (error as Error).message }, 'model-call texts could not be sealed: the records are kept without them'),
    );
    // settle requests of calls ending within the linger leave together (settle-batcher.ts); reservations at once,
    // most of them from an allotment of their budget scope, in memory (allotting-billing.ts)
    const settling = new SettleBatcher(new NatsBillingAdapter(() => p.nats, config.billingTimeoutMs), { lingerMs: config.settleLingerMs, maxBatch: SETTLE_BATCH_MAX });
    const billing =
      config.allotmentMultiple > 1
        ? new AllottingBilling(settling, {
            multiple: config.allotmentMultiple,
            ttlMs: config.allotmentTtlMs,
            idleMs: config.allotmentIdleMs,
            refillBelow: config.allotmentRefillBelow,
            onReturnFailed: (allotmentId, error) => p.logger.warn({ allotmentId, code: (error as PalisadeError).code }, 'allotment not returned: billing releases it at its TTL'),
          }).start()
        : settling;
    // every call commits: the relay is woken at most once per gap (its events reach JetStream up to the gap later)
    eventsAppendedRinger(pgPoolOf(p.dataSource!), { gapMs: config.eventsRingGapMs });
    p.beforeClose(async () => {
      upstream.shutdown();
      await modelCalls.flush();
      // the settle requests of the last commits (sent in the turn after them), retries included, then the batcher's queue
      await completions.drain(SETTLE_DRAIN_MS);
      await billing.close();
    });
    const detector = new PiiDetector({ defaultPhoneRegion: config.phoneRegion as CountryCode });
    const guardPolicies = new GuardPolicyService({ store: p.eventStore!, eventContext: p.eventContext, cacheMs: config.catalogCacheMs, changes });
    const held = new HeldAnswersService({ store: p.eventStore!, eventContext: p.eventContext, repo: new HeldAnswersRepository(p.dataSource!), policy, ttlMs: config.heldAnswerTtlMs });
    // held answers past their time: expired (event) and their text deleted, by whichever instance gets there first
    const sweeper = setInterval(() => void held.sweep().catch((error: unknown) => p.logger.warn({ code: (error as PalisadeError).code }, 'held answers not swept')), config.heldSweepMs);
    sweeper.unref();
    p.beforeClose(async () => clearInterval(sweeper));
    const completions = new CompletionsService({
      catalog,
      billing,
      rateLimits: new PgRateLimits(pgPoolOf(p.dataSource!), p.options.config.PG_SCHEMA),
      upstream,
      detector,
      guards: new GuardPipeline({ detector, piiDeadlineMs: config.piiDeadlineMs, policies: guardPolicies, tools: new PolicyToolAllowlist(policy) }),
      audit: modelCalls,
      review: held,
      keys,
      settings: config,
      logger: p.logger,
    });
    services = { catalog, completions, guardPolicies, held, changes };
  });
  // a change made through another router instance: its event drops this process's copies
  let feeds: EventBroadcastSubscription[] | undefined;
  platform.afterConnect(async (p) => {
    if (feeds) return;
    // the hooks run in order: the services are built by the one above (a failure there is retried before this runs)
    if (!services) throw new PalisadeError('unavailable', 'the router\'s services are not built yet');
    const { changes } = services;
    const started = CONFIG_EVENT_FEEDS.map(
      ({ consumer, filterSubject }) =>
        new EventBroadcastSubscription({ nc: p.nats!, service: 'llm-router', consumer, filterSubject, handler: (event) => changes.dropHere(event.tenantId), logger: p.logger }),
    );
    try {
      for (const feed of started) await feed.start();
    } catch (error) {
      // retried as a startup step: leave no subscription behind
      await Promise.all(started.map((feed) => feed.stop()));
      throw error;
    }
    feeds = started;
  });
  platform.beforeClose(async () => void (await Promise.all((feeds ?? []).map((feed) => feed.stop()))));
  return () => {
    if (!services) throw new PalisadeError('unavailable', 'the service is starting');
    return services;
  };
}

/**
 * The llm-router service: the one door between agents and models (OpenAI- and
 * Anthropic-compatible APIs, compliance routing, PII masking that fails closed, budgets
 * reserved first, breakers, model IO audited). Health, metrics, docs, the event store,
 * the outbox and NATS come from @palisade/service-kit.
 */
@Module({
  controllers: [OpenAiController, AnthropicController, CatalogController, GuardPolicyController, HeldAnswersController],
  providers: [
    { provide: ROUTER_CONFIG, useFactory: () => loadLlmRouterConfig() },
    { provide: 'llm-router.services', useFactory: (platform: Platform, config: LlmRouterConfig) => servicesFor(platform, config), inject: [PLATFORM, ROUTER_CONFIG] },
    { provide: CATALOG_SERVICE, useFactory: (services: Ready<Services>): Ready<CatalogService> => () => services().catalog, inject: ['llm-router.services'] },
    { provide: GUARD_POLICY_SERVICE, useFactory: (services: Ready<Services>): Ready<GuardPolicyService> => () => services().guardPolicies, inject: ['llm-router.services'] },
    { provide: HELD_ANSWERS_SERVICE, useFactory: (services: Ready<Services>): Ready<HeldAnswersService> => () => services().held, inject: ['llm-router.services'] },
    { provide: COMPLETIONS_SERVICE, useFactory: (services: Ready<Services>): Ready<CompletionsService> => () => services().completions, inject: ['llm-router.services'] },
  ],
})
export class LlmRouterModule {}
