import { timingSafeEqual } from 'node:crypto';
import { PalisadeError, type ServiceName } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { ApprovalEvent, ApprovalSubject } from './approvals.events';

export type ApprovalStatus = 'none' | 'pending' | 'approved' | 'rejected' | 'consumed';

export interface ApprovalState {
  status: ApprovalStatus;
  approvalId?: string;
  requester?: ApprovalSubject;
  action?: string;
  resourceType?: string;
  resourceId?: string;
  actionHash?: string;
  /** The service that performs the action and alone may redeem the token. */
  service?: ServiceName;
  /** Pending requests expire here; approved tokens at tokenExpiresAt. */
  expiresAt?: string;
  approver?: string;
  tokenSha256?: string;
  tokenExpiresAt?: string;
}

export type ApprovalCommand =
  | Command<'request', { approvalId: string; requester: ApprovalSubject; action: string; resourceType: string; resourceId?: string; actionHash: string; service: ServiceName; ttlMs: number }>
  /** `authorized`: whether the policy lets the approver approve (outside data, decided before). */
  | Command<'approve', { approver: ApprovalSubject; authorized: boolean; tokenSha256: string; ttlMs: number }>
  | Command<'reject', { approver: ApprovalSubject; authorized: boolean; reason?: string }>
  /**
   * `service`: the service asking the decision that redeems the token (undefined: unknown);
   * `serviceProven`: whether that is proven (its mTLS client certificate, or its signature
   * on the NATS request) rather than only named by the NATS inbox the answer goes to.
   */
  | Command<'consume', { subject: ApprovalSubject; actionHash: string; tokenSha256: string; service: ServiceName | undefined; serviceProven: boolean }>;

const refused = (message: string) => new PalisadeError('forbidden', message);
const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));

export const approvalDecider: Decider<ApprovalState, ApprovalCommand, ApprovalEvent> = {
  initialState: () => ({ status: 'none' }),

  decide(command, state) {
    const now = command.metadata.now;
    switch (command.type) {
      case 'request': {
        if (state.status !== 'none') throw new PalisadeError('conflict', 'approval already exists');
        const { ttlMs, ...data } = command.data;
        return [{ type: 'policy.approval.requested', data: { ...data, expiresAt: new Date(now.getTime() + ttlMs).toISOString() } }];
      }
      case 'approve':
      case 'reject': {
        if (state.status === 'none') throw new PalisadeError('not_found', 'approval not found');
        const { approver, authorized } = command.data;
        if (approver.type !== 'user' || approver.actingFor !== undefined) throw refused('only a person may approve or reject');
        if (approver.id === state.requester!.id) throw refused('the requester may not approve or reject their own request');
        // four eyes across acting-for: an agent's request is its user's own request
        if (approver.id === state.requester!.actingFor) throw refused('the user an agent acts for may not approve or reject its request');
        if (!authorized) throw refused('you may not decide approvals for this action');
        if (state.status !== 'pending') throw new PalisadeError('illegal_state', `approval is already ${state.status}`);
        if (Date.parse(state.expiresAt!) <= now.getTime()) throw new PalisadeError('illegal_state', 'approval request expired');
        if (command.type === 'reject') {
          return [{ type: 'policy.approval.rejected', data: { approvalId: state.approvalId!, approver: approver.id, ...(command.data.reason ? { reason: command.data.reason } : {}) } }];
        }
        const expiresAt = new Date(now.getTime() + command.data.ttlMs).toISOString();
        return [{ type: 'policy.approval.approved', data: { approvalId: state.approvalId!, approver: approver.id, tokenSha256: command.data.tokenSha256, expiresAt } }];
      }
      case 'consume': {
        // Any service may publish a NATS request naming another's inbox (issue 10): it never
        // sees the answer, but must not burn the token in that service's name. Checked
        // first, so such a request learns nothing of the token either.
        if (!command.data.serviceProven) {
          throw refused(`an approval token is redeemed only in a request signed by ${state.service ? `the ${state.service} service` : 'the service it names'} (NATS header Palisade-Caller): this one names its asker only by its reply inbox`);
        }
        if (state.status === 'consumed') throw refused('approval token already used');
        if (state.status !== 'approved' || !state.tokenSha256 || !sameHex(state.tokenSha256, command.data.tokenSha256)) throw refused('approval token is not valid');
        if (Date.parse(state.tokenExpiresAt!) <= now.getTime()) throw refused('approval token expired');
        if (!state.service || command.data.service !== state.service) throw refused(`approval token is for ${state.service ? `the ${state.service} service` : 'no service'}`);
        const { subject } = command.data;
        if (subject.type !== state.requester!.type || subject.id !== state.requester!.id) throw refused('approval token belongs to another requester');
        if (!sameHex(state.actionHash!, command.data.actionHash)) throw refused('approval token is bound to another action or other parameters');
        return [{ type: 'policy.approval.consumed', data: { approvalId: state.approvalId!, by: `${subject.type}:${subject.id}` } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'policy.approval.requested':
        return { status: 'pending', ...event.data };
      case 'policy.approval.approved':
        return { ...state, status: 'approved', approver: event.data.approver, tokenSha256: event.data.tokenSha256, tokenExpiresAt: event.data.expiresAt };
      case 'policy.approval.rejected':
        return { ...state, status: 'rejected', approver: event.data.approver };
      case 'policy.approval.consumed':
        return { ...state, status: 'consumed' };
    }
  },
};
