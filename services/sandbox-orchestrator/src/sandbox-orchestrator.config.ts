import { env, loadConfig } from '@palisade/config';
import { z } from 'zod';

/** The sandbox-orchestrator's own settings (besides every service's, in @palisade/service-kit). */
export interface SandboxOrchestratorConfig {
  /** Past this, a policy decision is a refusal (fail-closed): SANDBOX_POLICY_TIMEOUT_MS. */
  policyTimeoutMs: number;
  /** The crun binary: SANDBOX_CRUN. */
  crun: string;
  /** Bundles, workspaces and crun's state: SANDBOX_RUN_DIR. */
  runDir: string;
  /** Names this orchestrator's containers and cgroups, so a restart finds exactly its own: SANDBOX_INSTANCE. */
  instance: string;
  /** A ready sandbox idle this long is stopped: SANDBOX_IDLE_STOP_MS. */
  idleStopMs: number;
  /** Bytes kept of each of stdout and stderr per execution: SANDBOX_OUTPUT_CAP_BYTES. */
  outputCapBytes: number;
  /** Sandboxes get a network whose only way out is the egress proxy (`on`), or only loopback (`off`): SANDBOX_EGRESS. */
  egress: boolean;
  /** The port the proxy listens on at each sandbox's host address: SANDBOX_EGRESS_PROXY_PORT. */
  egressProxyPort: number;
  /** Sandbox networks (namespace, nftables, CA, proxy and resolver listening) kept prepared ahead; 0: made at each start: SANDBOX_NETNS_POOL_SIZE. */
  netnsPoolSize: number;
  /** The credential service (lease grant and mTLS redemption for injection rules): SANDBOX_CREDENTIAL_URL. */
  credentialUrl: string;
  /** Past this, a lease grant or redemption fails (the request is refused 502): SANDBOX_CREDENTIAL_TIMEOUT_MS. */
  credentialTimeoutMs: number;
  /** Executions held and metered by billing's ledger (`on`), or not held, metered at 0 (`off`): SANDBOX_BILLING. */
  billing: boolean;
  /** Past this, a billing quote or hold is a refusal (503, fail-closed): SANDBOX_BILLING_TIMEOUT_MS. */
  billingTimeoutMs: number;
  /** A sandbox is stopped this long after its creation (reason `lifetime`): SANDBOX_LIFETIME_MS. */
  lifetimeMs: number;
  /** Per tenant: sandboxes ready at once (SANDBOX_TENANT_MAX_SANDBOXES), CPU-seconds (SANDBOX_TENANT_CPU_SECONDS) within a sliding window of hours (SANDBOX_TENANT_CPU_WINDOW_HOURS). */
  quotas: { maxSandboxes: number; cpuSeconds: number; cpuWindowMs: number };
  /** The largest file uploaded into or downloaded from a workspace at once: SANDBOX_FILE_MAX_BYTES. */
  fileMaxBytes: number;
  /** One container per sandbox created ahead for its next execution: SANDBOX_WARM_POOL. */
  warmPool: boolean;
}

/** Validated at start, naming the bad variable. */
export function loadSandboxOrchestratorConfig(source: NodeJS.ProcessEnv = process.env): SandboxOrchestratorConfig {
  const config = loadConfig(
    {
      SANDBOX_POLICY_TIMEOUT_MS: env.int(2000, 50, 30000),
      SANDBOX_CRUN: env.path().default('crun'),
      SANDBOX_RUN_DIR: env.path().default('/run/palisade-sandbox'),
      SANDBOX_INSTANCE: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'must be lowercase letters, digits and - (at most 31)').default('local'),
      SANDBOX_IDLE_STOP_MS: env.int(15 * 60_000, 1000, 7 * 24 * 3_600_000),
      SANDBOX_OUTPUT_CAP_BYTES: env.int(1024 * 1024, 1024, 64 * 1024 * 1024),
      SANDBOX_EGRESS: z.enum(['on', 'off']).default('on'),
      SANDBOX_EGRESS_PROXY_PORT: env.int(3128, 1, 65535),
      SANDBOX_NETNS_POOL_SIZE: env.int(4, 0, 64),
      SANDBOX_CREDENTIAL_URL: env.url(['https']).default('https://127.0.0.1:7103'),
      SANDBOX_CREDENTIAL_TIMEOUT_MS: env.int(3000, 100, 30000),
      SANDBOX_BILLING: z.enum(['on', 'off']).default('on'),
      SANDBOX_BILLING_TIMEOUT_MS: env.int(2000, 50, 30000),
      SANDBOX_LIFETIME_MS: env.int(24 * 3_600_000, 1000, 30 * 24 * 3_600_000),
      SANDBOX_TENANT_MAX_SANDBOXES: env.int(20, 1, 100_000),
      SANDBOX_TENANT_CPU_SECONDS: env.int(36_000, 1, 1_000_000_000),
      SANDBOX_TENANT_CPU_WINDOW_HOURS: env.int(24, 1, 24 * 31),
      SANDBOX_FILE_MAX_BYTES: env.int(16 * 1024 * 1024, 1, 1024 * 1024 * 1024),
      SANDBOX_WARM_POOL: z.enum(['on', 'off']).default('on'),
    },
    source,
  );
  return {
    policyTimeoutMs: config.SANDBOX_POLICY_TIMEOUT_MS,
    crun: config.SANDBOX_CRUN,
    runDir: config.SANDBOX_RUN_DIR,
    instance: config.SANDBOX_INSTANCE,
    idleStopMs: config.SANDBOX_IDLE_STOP_MS,
    outputCapBytes: config.SANDBOX_OUTPUT_CAP_BYTES,
    egress: config.SANDBOX_EGRESS === 'on',
    egressProxyPort: config.SANDBOX_EGRESS_PROXY_PORT,
    netnsPoolSize: config.SANDBOX_NETNS_POOL_SIZE,
    credentialUrl: config.SANDBOX_CREDENTIAL_URL,
    credentialTimeoutMs: config.SANDBOX_CREDENTIAL_TIMEOUT_MS,
    billing: config.SANDBOX_BILLING === 'on',
    billingTimeoutMs: config.SANDBOX_BILLING_TIMEOUT_MS,
    lifetimeMs: config.SANDBOX_LIFETIME_MS,
    quotas: { maxSandboxes: config.SANDBOX_TENANT_MAX_SANDBOXES, cpuSeconds: config.SANDBOX_TENANT_CPU_SECONDS, cpuWindowMs: config.SANDBOX_TENANT_CPU_WINDOW_HOURS * 3_600_000 },
    fileMaxBytes: config.SANDBOX_FILE_MAX_BYTES,
    warmPool: config.SANDBOX_WARM_POOL === 'on',
  };
}
