import type { ServiceName } from '@palisade/contracts';
import type { DomainEvent } from '@palisade/eventsourcing';

export interface ApprovalSubject {
  type: 'user' | 'agent' | 'service';
  id: string;
  actingFor?: string;
}

/** Stream `approval-<id>`. The token itself never appears: only its SHA-256. */
export type ApprovalRequested = DomainEvent<
  'policy.approval.requested',
  {
    approvalId: string;
    requester: ApprovalSubject;
    action: string;
    resourceType: string;
    resourceId?: string;
    actionHash: string;
    expiresAt: string;
    /** The one service that may redeem it (absent in approvals recorded before: none may). */
    service?: ServiceName;
  }
>;
export type ApprovalGranted = DomainEvent<'policy.approval.approved', { approvalId: string; approver: string; tokenSha256: string; expiresAt: string }>;
export type ApprovalRejected = DomainEvent<'policy.approval.rejected', { approvalId: string; approver: string; reason?: string }>;
export type ApprovalConsumed = DomainEvent<'policy.approval.consumed', { approvalId: string; by: string }>;

export type ApprovalEvent = ApprovalRequested | ApprovalGranted | ApprovalRejected | ApprovalConsumed;
