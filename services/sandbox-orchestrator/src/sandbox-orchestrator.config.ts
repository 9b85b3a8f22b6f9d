import { env, loadConfig } from '@palisade/config';

/** The sandbox-orchestrator's own settings (besides every service's, in @palisade/service-kit). */
export interface SandboxOrchestratorConfig {
  /** Past this, a policy decision is a refusal (fail-closed): SANDBOX_POLICY_TIMEOUT_MS. */
  policyTimeoutMs: number;
}

/** Validated at start, naming the bad variable. */
export function loadSandboxOrchestratorConfig(source: NodeJS.ProcessEnv = process.env): SandboxOrchestratorConfig {
  const config = loadConfig({ SANDBOX_POLICY_TIMEOUT_MS: env.int(2000, 50, 30000) }, source);
  return { policyTimeoutMs: config.SANDBOX_POLICY_TIMEOUT_MS };
}
