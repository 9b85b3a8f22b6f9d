import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { newEventId, PalisadeError, type Principal, type ServiceName } from '@palisade/contracts';
import { CommandHandler, foldEvents, streamName, toDomainEvent } from '@palisade/eventsourcing';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { PolicyEngine } from '../engine/policy-engine';
import { actionHash, evaluate } from '../model/evaluate';
import { subjectOfPrincipal } from '../decisions/agent-subject';
import type { DecisionRequest } from '../model/policy.model';
import { POLICY_SETTINGS, type PolicySettings } from '../policy.config';
import { approvalDecider, type ApprovalCommand, type ApprovalState } from './approvals.decider';
import type { ApprovalEvent, ApprovalSubject } from './approvals.events';

export interface ApprovalView {
  approvalId: string;
  status: ApprovalState['status'];
  requester: ApprovalSubject;
  action: string;
  resourceType: string;
  resourceId?: string;
  actionHash: string;
  /** The service that performs the action: it alone redeems the token. */
  service?: ServiceName;
  expiresAt: string;
  approver?: string;
  tokenExpiresAt?: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const TOKEN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

/**
 * Approvals of critical actions: requested by whoever wants to act (people or agents),
 * decided by another, authorized person, redeemed once by the requester with a token
 * bound to the exact action and to the one service the request names (the service that
 * performs the action asks the decision that redeems it). Streams `approval-<tenant>/<id>`, so another tenant's
 * approval is simply not found.
 */
@Injectable()
export class ApprovalsService {
  constructor(
    @Inject(PLATFORM) private readonly platform: Platform,
    private readonly engine: PolicyEngine,
    @Inject(POLICY_SETTINGS) private readonly settings: PolicySettings,
  ) {}

  async request(principal: Principal, input: Pick<DecisionRequest, 'action' | 'resource' | 'parameters'> & { service: ServiceName }): Promise<ApprovalView> {
    const approvalId = newEventId();
    const requester = subjectOf(principal);
    const hash = actionHash({ tenantId: principal.tenantId, subject: requester, action: input.action, resource: input.resource, parameters: input.parameters });
    const result = await this.run(principal, approvalId, {
      type: 'request',
      data: {
        approvalId,
        requester,
        action: input.action,
        resourceType: input.resource.type,
        ...(input.resource.id !== undefined ? { resourceId: input.resource.id } : {}),
        actionHash: hash,
        service: input.service,
        ttlMs: this.settings.requestTtlMs,
      },
    });
    return view(result);
  }

  /** Approve: returns the one-time token, shown only here. */
  async approve(principal: Principal, approvalId: string): Promise<{ approval: ApprovalView; token: string }> {
    const secret = randomBytes(32).toString('base64url');
    const authorized = await this.mayDecide(principal, approvalId);
    const result = await this.run(principal, approvalId, {
      type: 'approve',
      data: { approver: subjectOf(principal), authorized, tokenSha256: sha256(secret), ttlMs: this.settings.tokenTtlMs },
    });
    return { approval: view(result), token: `${approvalId}.${secret}` };
  }

  async reject(principal: Principal, approvalId: string, reason?: string): Promise<ApprovalView> {
    const authorized = await this.mayDecide(principal, approvalId);
    const result = await this.run(principal, approvalId, { type: 'reject', data: { approver: subjectOf(principal), authorized, ...(reason ? { reason } : {}) } });
    return view(result);
  }

  async get(tenantId: string, approvalId: string): Promise<ApprovalView> {
    const store = this.platform.eventStore!;
    const stream = await store.inTransaction((tx) => store.readStream(tx, approvalStream(tenantId, approvalId)));
    if (stream.version === 0) throw new PalisadeError('not_found', 'approval not found');
    return view(foldEvents(approvalDecider, stream.events.map((e) => toDomainEvent<ApprovalEvent>(e.event))));
  }

  /**
   * Redeem a token for the action being authorized. Refusals (replay, another action,
   * another requester, another service than the approval names, an asking service not
   * proven (`askerProven`: named only by a NATS reply inbox), expiry) are thrown as
   * 'forbidden' with the reason.
   */
  async consume(request: DecisionRequest, token: string, hash: string, askerProven: boolean): Promise<void> {
    const match = TOKEN.exec(token);
    if (!match) throw new PalisadeError('forbidden', 'approval token is not valid');
    const [, approvalId, secret] = match;
    const actor = { tenantId: request.tenantId, type: request.subject.type, id: request.subject.id } as Principal;
    await this.run(actor, approvalId, { type: 'consume', data: { subject: request.subject, actionHash: hash, tokenSha256: sha256(secret), service: request.askedBy, serviceProven: askerProven } }, true);
  }

  /** An approver needs a rule allowing `approve` on the approval's action (resource type `approval`). */
  private async mayDecide(principal: Principal, approvalId: string): Promise<boolean> {
    const approval = await this.get(principal.tenantId, approvalId);
    const tenant = await this.engine.policyOf(principal.tenantId);
    const decision = evaluate(
      { tenantId: principal.tenantId, subject: subjectOfPrincipal(principal), action: 'approve', resource: { type: 'approval', id: approval.action } },
      { tenant, platform: undefined },
    );
    return decision.decision === 'allow';
  }

  private async run(principal: Pick<Principal, 'tenantId' | 'type' | 'id'>, approvalId: string, command: Omit<ApprovalCommand, 'metadata'>, mustExist = command.type !== 'request') {
    const handler = new CommandHandler(this.platform.eventStore!, approvalDecider, { eventContext: this.platform.eventContext });
    const metadata = { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: new Date() };
    const streamId = approvalStream(principal.tenantId, approvalId);
    if (mustExist) {
      const store = this.platform.eventStore!;
      const exists = await store.inTransaction((tx) => store.readStream(tx, streamId));
      if (exists.version === 0) throw new PalisadeError(command.type === 'consume' ? 'forbidden' : 'not_found', command.type === 'consume' ? 'approval token is not valid' : 'approval not found');
    }
    const result = await handler.handle(streamId, { ...command, metadata } as ApprovalCommand);
    return result.state;
  }
}

export function approvalStream(tenantId: string, approvalId: string): string {
  return streamName('approval', `${tenantId}/${approvalId}`);
}

function subjectOf(principal: Principal): ApprovalSubject {
  const s: ApprovalSubject = { type: principal.type, id: principal.id };
  if (principal.actingFor) s.actingFor = principal.actingFor;
  return s;
}

function view(state: ApprovalState): ApprovalView {
  const v: ApprovalView = {
    approvalId: state.approvalId!,
    status: state.status,
    requester: state.requester!,
    action: state.action!,
    resourceType: state.resourceType!,
    actionHash: state.actionHash!,
    expiresAt: state.expiresAt!,
  };
  if (state.resourceId !== undefined) v.resourceId = state.resourceId;
  if (state.service) v.service = state.service;
  if (state.approver) v.approver = state.approver;
  if (state.tokenExpiresAt) v.tokenExpiresAt = state.tokenExpiresAt;
  return v;
}
