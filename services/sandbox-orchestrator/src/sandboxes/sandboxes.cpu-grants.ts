/**
 * A running execution's CPU-seconds grant as claimed (rows shared by every instance in
 * PostgreSQL: `SandboxesRepository.claimCpu`), with the tenant's quota at the claim.
 */
export interface CpuGrant {
  limit: number;
  quota: number;
}

/** The execution's bound under the tenant's quota now: its grant less what the quota was lowered by since (never more than granted). */
export function cpuLimitNow(grant: CpuGrant, quotaNow: number): number {
  return grant.limit - Math.max(0, grant.quota - quotaNow);
}
