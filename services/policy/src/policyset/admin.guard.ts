import { Injectable } from '@nestjs/common';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { PolicyEngine } from '../engine/policy-engine';
import { evaluate } from '../model/evaluate';
import { subjectOfPrincipal } from '../decisions/agent-subject';

/** Scope an access token carries for a tenant's policy administrators (issued by auth). */
export const POLICY_ADMIN_SCOPE = 'policy:admin';

/**
 * Who may change a tenant's policy: a person (never an agent, never a service token)
 * whose token carries the policy:admin scope, or whom the tenant's own rules allow to
 * `manage` resource type `policy`.
 */
@Injectable()
export class PolicyAdministrators {
  constructor(private readonly engine: PolicyEngine) {}

  async assert(principal: Principal): Promise<void> {
    if (principal.type === 'agent') throw new PalisadeError('forbidden', 'an agent may not change policies, approvals or guides');
    if (principal.type !== 'user') throw new PalisadeError('forbidden', 'only a person administers policies');
    if (principal.scopes?.includes(POLICY_ADMIN_SCOPE)) return;
    const tenant = await this.engine.policyOf(principal.tenantId);
    const decision = evaluate(
      { tenantId: principal.tenantId, subject: subjectOfPrincipal(principal), action: 'manage', resource: { type: 'policy' } },
      { tenant, platform: undefined },
    );
    if (decision.decision !== 'allow') throw new PalisadeError('forbidden', 'you may not administer this tenant\'s policy');
  }
}
