import { Module, type BeforeApplicationShutdown } from '@nestjs/common';
import { LedgerClient } from '@palisade/billing-client';
import { PalisadeError } from '@palisade/contracts';
import { policyClientOnceConnected, type PolicyClient } from '@palisade/policy-client';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { loadSandboxOrchestratorConfig, type SandboxOrchestratorConfig } from './sandbox-orchestrator.config';
import { EGRESS_RULES_SERVICE, POLICY_CLIENT, SANDBOX_CONFIG, SANDBOXES_SERVICE, SESSIONS_SERVICE, TENANT_QUOTAS_SERVICE, type Ready } from './sandbox-orchestrator.tokens';
import { EgressAuditBatcher } from './egress/egress.audit';
import { EgressRulesController } from './egress/egress-rules.controller';
import { EgressRulesRepository } from './egress/egress-rules.repository';
import { EgressRulesService } from './egress/egress-rules.service';
import { CredentialServiceLeases } from './egress/egress.credentials';
import { ExecutionTokens } from './egress/egress.execution-tokens';
import { EgressService } from './egress/egress.service';
import { cachedOwner, eventStoreSink } from './egress/egress.store';
import { TenantQuotasController } from './quotas/tenant-quotas.controller';
import { TenantQuotasRepository } from './quotas/tenant-quotas.repository';
import { TenantQuotasService } from './quotas/tenant-quotas.service';
import { CrunRuntime } from './runtime/crun.runtime';
import { CrunWorkspaceFiles } from './runtime/workspace-files';
import { SandboxTokens } from './sandboxes/sandbox-tokens';
import { LedgerExecutionBilling } from './sandboxes/sandboxes.billing';
import { SandboxesController, SandboxSelfController } from './sandboxes/sandboxes.controller';
import { SandboxesRepository } from './sandboxes/sandboxes.repository';
import { SandboxesService } from './sandboxes/sandboxes.service';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsRepository } from './sessions/sessions.repository';
import { SessionsService } from './sessions/sessions.service';

type PolicyPort = () => Pick<PolicyClient, 'authorize'> | undefined;

/** A service made once the platform is connected (the event store and the data source exist); 503 before. */
function onceConnected<T>(platform: Platform, make: (p: Platform) => T): Ready<T> {
  let service: T | undefined;
  platform.afterConnect(async (p) => {
    service ??= make(p);
  });
  return () => {
    if (!service) throw new PalisadeError('unavailable', 'the service is starting');
    return service;
  };
}

/** The sessions service. */
const sessionsServiceFor = (platform: Platform, policy: PolicyPort): Ready<SessionsService> =>
  onceConnected(platform, (p) => new SessionsService({ store: p.eventStore!, repo: new SessionsRepository(p.dataSource!), policy, eventContext: p.eventContext }));

/** The egress rules service (the API, and the rules the proxy resolves). */
const egressRulesServiceFor = (platform: Platform): Ready<EgressRulesService> =>
  onceConnected(platform, (p) => new EgressRulesService({ store: p.eventStore!, repo: new EgressRulesRepository(p.dataSource!), eventContext: p.eventContext }));

/** The tenants' own sandbox quotas (the API, and what the sandboxes enforce); the environment's are the platform's. */
const tenantQuotasServiceFor = (platform: Platform, config: SandboxOrchestratorConfig): Ready<TenantQuotasService> =>
  onceConnected(platform, (p) => new TenantQuotasService({ store: p.eventStore!, repo: new TenantQuotasRepository(p.dataSource!), platform: config.quotas, eventContext: p.eventContext }));

/**
 * The sandboxes service, once the platform is connected and the runtime checked; at
 * start it reconciles what the runtime holds (adopts or removes) and then stops idle
 * sandboxes periodically.
 */
/**
 * Work that must be done before Nest's own signal handler ends the process: on SIGTERM it
 * re-raises the signal after its shutdown hooks, without waiting for the platform's close
 * hooks (which then stop halfway).
 */
class BeforeShutdown implements BeforeApplicationShutdown {
  private readonly hooks: Array<() => Promise<void>> = [];

  add(hook: () => Promise<void>): void {
    this.hooks.push(hook);
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const hook of this.hooks) await hook().catch(() => undefined);
  }
}

function sandboxesServiceFor(
  platform: Platform,
  policy: PolicyPort,
  config: SandboxOrchestratorConfig,
  egressRules: Ready<EgressRulesService>,
  tenantQuotas: Ready<TenantQuotasService>,
  shutdown: BeforeShutdown,
): Ready<SandboxesService> {
  let service: SandboxesService | undefined;
  let failure: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let audit: EgressAuditBatcher | undefined;
  let pool: EgressService | undefined;
  platform.afterConnect(async (p) => {
    if (service) return;
    const repo = new SandboxesRepository(p.dataSource!, p.eventStore!);
    let egress: EgressService | undefined;
    // an injection rule's lease is granted with the token of the execution running in the
    // sandbox (held in memory for that execution only) and redeemed over mTLS with this
    // service's own certificate (SPIFFE id sandbox-orchestrator, the only caller the
    // credential service's redeem route admits)
    const executionTokens = new ExecutionTokens();
    if (config.egress) {
      const owner = cachedOwner((id) => repo.ownerOf(id));
      audit = new EgressAuditBatcher(eventStoreSink(p.eventStore!, p.eventContext, owner), { onError: (error) => p.logger.warn({ err: error }, 'egress decisions not recorded') });
      egress = new EgressService({
        instance: config.instance,
        proxyPort: config.egressProxyPort,
        context: async (id) => {
          const o = await owner(id);
          // the tenant's rules narrowed by the running execution's agent's and by the session's
          return o && { ...o, rules: await egressRules().rulesFor(o.tenantId, o.sessionId, executionTokens.agentFor(id)) };
        },
        leases: new CredentialServiceLeases({ baseUrl: config.credentialUrl, grantToken: executionTokens.grantToken, tls: () => p.options.identity.tlsOptions(), timeoutMs: config.credentialTimeoutMs }),
        audit,
        poolSize: config.netnsPoolSize,
        onPoolError: (error) => p.logger.warn({ err: error }, 'sandbox network pool: a preparation failed; retried (starts prepare their own meanwhile)'),
      });
    }
    const runtime = new CrunRuntime({ crun: config.crun, runDir: config.runDir, instance: config.instance, egress, warm: config.warmPool });
    try {
      await runtime.check();
    } catch (error) {
      failure = (error as Error).message;
      p.logger.error({ err: error }, 'sandbox runtime unavailable: sandboxes are refused (503)');
      return;
    }
    const candidate = new SandboxesService({
      store: p.eventStore!,
      repo,
      sessions: new SessionsRepository(p.dataSource!),
      policy,
      runtime,
      executionTokens,
      billing: config.billing ? new LedgerExecutionBilling(new LedgerClient(() => p.nats, config.billingTimeoutMs)) : undefined,
      files: new CrunWorkspaceFiles({ runDir: config.runDir, instance: config.instance }),
      tokens: await SandboxTokens.create(config.lifetimeMs),
      settings: { outputCapBytes: config.outputCapBytes, idleStopMs: config.idleStopMs, instance: config.instance, lifetimeMs: config.lifetimeMs, quotas: config.quotas, fileMaxBytes: config.fileMaxBytes },
      tenantQuotas: (tenantId) => tenantQuotas().quotasFor(tenantId),
      eventContext: p.eventContext,
      warn: (details, message) => p.logger.warn(details, message),
    });
    const recovered = await candidate.recover();
    p.logger.info(recovered, 'sandboxes reconciled with the runtime');
    service = candidate;
    // the prepared sandbox networks, after the reconcile removed those of a previous process
    pool = egress;
    void egress?.warm();
    timer = setInterval(() => {
      candidate.stopIdle().catch((error: unknown) => p.logger.warn({ err: error }, 'idle stop failed; retried at the next tick'));
      candidate.stopExpired().catch((error: unknown) => p.logger.warn({ err: error }, 'lifetime stop failed; retried at the next tick'));
    }, Math.min(60_000, Math.max(1000, Math.floor(Math.min(config.idleStopMs, config.lifetimeMs) / 4))));
    timer.unref();
  });
  // the namespace pool's waiting networks removed at a clean stop (a restart's reconcile removes them otherwise)
  shutdown.add(async () => pool?.stopPool());
  platform.beforeClose(async () => {
    if (timer) clearInterval(timer);
    await pool?.stopPool();
    await service?.close().catch(() => undefined);
    await audit?.close();
  });
  return () => {
    if (failure) throw new PalisadeError('unavailable', `the sandbox runtime is unavailable: ${failure}`);
    if (!service) throw new PalisadeError('unavailable', 'the service is starting');
    return service;
  };
}

/**
 * The sandbox-orchestrator service: agent work sessions, their sandboxes, the tenants'
 * egress rules and sandbox quotas. Health, metrics, docs, the event store, the outbox and NATS come from
 * @palisade/service-kit; who may do what is the policy service's decision.
 */
@Module({
  controllers: [SessionsController, SandboxesController, SandboxSelfController, EgressRulesController, TenantQuotasController],
  providers: [
    { provide: SANDBOX_CONFIG, useFactory: () => loadSandboxOrchestratorConfig() },
    {
      provide: POLICY_CLIENT,
      useFactory: (platform: Platform, config: SandboxOrchestratorConfig): PolicyPort => policyClientOnceConnected(platform, 'sandbox-orchestrator', { timeoutMs: config.policyTimeoutMs }),
      inject: [PLATFORM, SANDBOX_CONFIG],
    },
    { provide: SESSIONS_SERVICE, useFactory: (platform: Platform, policy: PolicyPort) => sessionsServiceFor(platform, policy), inject: [PLATFORM, POLICY_CLIENT] },
    { provide: EGRESS_RULES_SERVICE, useFactory: (platform: Platform) => egressRulesServiceFor(platform), inject: [PLATFORM] },
    { provide: TENANT_QUOTAS_SERVICE, useFactory: (platform: Platform, config: SandboxOrchestratorConfig) => tenantQuotasServiceFor(platform, config), inject: [PLATFORM, SANDBOX_CONFIG] },
    {
      provide: SANDBOXES_SERVICE,
      useFactory: (platform: Platform, policy: PolicyPort, config: SandboxOrchestratorConfig, egressRules: Ready<EgressRulesService>, tenantQuotas: Ready<TenantQuotasService>, shutdown: BeforeShutdown) =>
        sandboxesServiceFor(platform, policy, config, egressRules, tenantQuotas, shutdown),
      inject: [PLATFORM, POLICY_CLIENT, SANDBOX_CONFIG, EGRESS_RULES_SERVICE, TENANT_QUOTAS_SERVICE, BeforeShutdown],
    },
    BeforeShutdown,
  ],
})
export class SandboxOrchestratorModule {}
