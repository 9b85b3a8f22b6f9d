import { PalisadeError } from '@palisade/contracts';
import { isUndecided, type AuthorizeDecision, type AuthorizeRequest, type PolicyClient } from '@palisade/policy-client';
import type { Caller } from './sessions/sessions.service';

/** What is asked of the policy service, less who asks (taken from the caller). */
export type PolicyAsk = Omit<AuthorizeRequest, 'tenantId' | 'subject'>;

/**
 * The policy's decisions on these asks, in order (asked together: the client coalesces them),
 * for the caller: a person or an agent, with its token forwarded. Fails closed: no client yet,
 * or any ask left undecided, is `unavailable`.
 */
export async function askPolicy(policy: Pick<PolicyClient, 'authorize'> | undefined, caller: Caller, asks: readonly PolicyAsk[]): Promise<AuthorizeDecision[]> {
  if (!policy) throw new PalisadeError('unavailable', 'the policy service could not decide (not connected yet)');
  const { principal, agentToken } = caller;
  const subject: AuthorizeRequest['subject'] = { type: principal.type, id: principal.id };
  if (agentToken) subject.token = agentToken; // a person's or an agent's token: the policy service takes who they are (and their teams) from it
  const decisions = await Promise.all(asks.map((ask) => policy.authorize({ tenantId: principal.tenantId, subject, ...ask })));
  const failed = decisions.find(isUndecided);
  if (failed) throw new PalisadeError('unavailable', `the policy service could not decide (${failed.reason}): denied`);
  return decisions;
}
