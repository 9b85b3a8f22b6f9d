import { PalisadeError, type Principal } from '@palisade/contracts';
import { isUndecided, type AuthorizeRequest, type PolicyClient } from '@palisade/policy-client';

/** The tool resource and action of the policy service's allowlists (services/policy/README.md, "Tools"). */
export const TOOL_RESOURCE = 'tool';
export const INVOKE = 'invoke';

/** Which of the named tools the caller may use. */
export interface ToolAllowlist {
  allowed(principal: Principal, token: string | undefined, tools: readonly string[]): Promise<Set<string>>;
}

/**
 * Asks the policy service, as the sandbox orchestrator does for `execute_code`: `invoke`
 * on `tool` <name>, for the agent (its token, so the service takes the agent and its user
 * from it, never from us) or the person. Only an explicit allow counts; a policy service
 * that cannot decide refuses the request (503), never lets tools through.
 */
export class PolicyToolAllowlist implements ToolAllowlist {
  constructor(private readonly policy: () => Pick<PolicyClient, 'authorize'> | undefined) {}

  async allowed(principal: Principal, token: string | undefined, tools: readonly string[]): Promise<Set<string>> {
    if (tools.length === 0) return new Set();
    const policy = this.policy();
    if (!policy) throw new PalisadeError('unavailable', 'the policy service could not decide on the tools (not connected yet): refused');
    const subject: AuthorizeRequest['subject'] = { type: principal.type === 'agent' ? 'agent' : 'user', id: principal.id, ...(token ? { token } : {}) };
    const decisions = await Promise.all(tools.map((tool) => policy.authorize({ tenantId: principal.tenantId, subject, action: INVOKE, resource: { type: TOOL_RESOURCE, id: tool } })));
    const failed = decisions.find(isUndecided);
    if (failed) throw new PalisadeError('unavailable', `the policy service could not decide on the tools (${failed.reason}): refused`);
    return new Set(tools.filter((_, i) => decisions[i].decision === 'allow'));
  }
}

/** The names of the tools a request offers the model, in order (OpenAI: `function.name`, Anthropic: `name`). */
export function offeredToolNames(api: 'openai' | 'anthropic', body: Record<string, unknown>): string[] {
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ name?: unknown; function?: { name?: unknown } }>) : [];
  return tools.map((t) => String((api === 'openai' ? t.function?.name : t.name) ?? ''));
}
