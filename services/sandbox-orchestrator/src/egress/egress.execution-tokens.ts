import { PalisadeError } from '@palisade/contracts';
import type { LeaseContext } from './egress.credentials';

/**
 * The token of the execution running in each sandbox, for the time of that execution
 * only: the caller's bearer token as it was presented to the exec route (already verified
 * there), so that the egress proxy grants a lease as that caller (the credential service
 * forwards it to the policy service: the agent's own tool allowlist and its user's rights
 * decide). Held in this process's memory only: never written to disk, the environment,
 * an event or a log line; released when the execution ends, whatever the outcome.
 */
export class ExecutionTokens {
  private readonly held = new Map<string, { executionId: string; token: string; agentId?: string }>();

  /**
   * Holds `token` for the execution (and, when an agent runs it, the agent's id: its egress
   * rule set narrows the tenant's); the returned function releases it (idempotent; never
   * another execution's).
   */
  hold(sandboxId: string, executionId: string, token: string, agentId?: string): () => void {
    this.held.set(sandboxId, { executionId, token, ...(agentId ? { agentId } : {}) });
    return () => {
      if (this.held.get(sandboxId)?.executionId === executionId) this.held.delete(sandboxId);
    };
  }

  /** The token of the execution running in the sandbox now, if any. */
  tokenFor(sandboxId: string): string | undefined {
    return this.held.get(sandboxId)?.token;
  }

  /** The agent whose execution runs in the sandbox now, if an agent's. */
  agentFor(sandboxId: string): string | undefined {
    return this.held.get(sandboxId)?.agentId;
  }

  /** How many executions hold a token (tests: nothing is left behind). */
  size(): number {
    return this.held.size;
  }

  /** `grantToken` of `CredentialServiceLeases`: no execution running, no lease (fail-closed). */
  readonly grantToken = async (context: Pick<LeaseContext, 'sandboxId'>): Promise<string> => {
    const token = this.tokenFor(context.sandboxId);
    if (!token) throw new PalisadeError('unavailable', 'no execution holds a token in this sandbox: a lease is granted only for the caller of the running execution');
    return token;
  };
}
