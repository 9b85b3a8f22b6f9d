import { env, loadConfig } from '@palisade/config';

/** The policy service's own settings (besides every service's, in @palisade/service-kit). */
export const POLICY_SETTINGS = Symbol('palisade.policy.config');

export interface PolicySettings {
  /** How long a pending approval request may wait for a decision. */
  requestTtlMs: number;
  /** How long an approval token stays redeemable. */
  tokenTtlMs: number;
  /** Most tenants held in memory per instance; the least recently used go first. */
  maxTenants: number;
}

export function loadPolicySettings(source: NodeJS.ProcessEnv = process.env): PolicySettings {
  const config = loadConfig(
    {
      POLICY_APPROVAL_REQUEST_TTL_SECONDS: env.int(24 * 3600, 60, 30 * 24 * 3600),
      POLICY_APPROVAL_TOKEN_TTL_SECONDS: env.int(15 * 60, 10, 24 * 3600),
      POLICY_MAX_TENANTS: env.int(20_000, 1, 10_000_000),
    },
    source,
  );
  return {
    requestTtlMs: config.POLICY_APPROVAL_REQUEST_TTL_SECONDS * 1000,
    tokenTtlMs: config.POLICY_APPROVAL_TOKEN_TTL_SECONDS * 1000,
    maxTenants: config.POLICY_MAX_TENANTS,
  };
}
