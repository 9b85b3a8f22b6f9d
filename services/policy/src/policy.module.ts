import { Module } from '@nestjs/common';
import { ApprovalsController } from './approvals/approvals.controller';
import { ApprovalsService } from './approvals/approvals.service';
import { DecisionsController } from './decisions/decisions.controller';
import { DecisionsRpc } from './decisions/decisions.rpc';
import { DecisionService } from './decisions/decisions.service';
import { ForwardedTokens } from './decisions/forwarded-tokens';
import { PolicyEngine } from './engine/policy-engine';
import { PoliciesController } from './policies/policies.controller';
import { loadPolicySettings, POLICY_SETTINGS } from './policy.config';
import { PolicyAdministrators } from './policyset/admin.guard';
import { PolicySetController } from './policyset/policyset.controller';
import { PolicySetService } from './policyset/policyset.service';

/**
 * The policy service: decisions (NATS + HTTPS), administration of roles, assignments,
 * attributes, allowlists and versioned policies, and approvals of critical actions.
 * Health, metrics, docs, the event store, the outbox and NATS come from @palisade/service-kit.
 */
@Module({
  controllers: [DecisionsController, PolicySetController, PoliciesController, ApprovalsController],
  providers: [
    { provide: POLICY_SETTINGS, useFactory: () => loadPolicySettings() },
    PolicyEngine,
    ForwardedTokens,
    DecisionService,
    DecisionsRpc,
    ApprovalsService,
    PolicySetService,
    PolicyAdministrators,
  ],
})
export class PolicyModule {}
