import { PalisadeError, newEventId, type EventFactoryContext, type Principal, type ServiceName } from '@palisade/contracts';
import { envelopeOf, type Decider } from '@palisade/eventsourcing';
import { authorize, type CredentialAccessPolicy } from '../access/access-policy';
import { actorOf, type Clock } from '../credential.settings';
import type { SecretMaterial } from '../crypto/secret-material';
import { hashToken, isLeaseToken, newLeaseToken } from './lease-token';
import { leasesDecider, type LeaseCommand, type LeaseLimits, type LeaseState } from './leases.decider';
import type { LeaseEvent, LeaseGranted } from './leases.events';
import type { LeasesRepository, RedemptionRow } from './leases.repository';

export interface LeaseGrant {
  leaseId: string;
  token: string;
  secretId: string;
  sessionId: string;
  tool: string;
  uses: number;
  expiresAt: string;
}

export interface Redemption {
  leaseId: string;
  secretId: string;
  version: number;
  value: string;
}

export interface LeasesServiceDependencies {
  repo: Pick<LeasesRepository, 'secretForLease' | 'findByToken' | 'grant' | 'redeem'>;
  material: Pick<SecretMaterial, 'decrypt'>;
  policy: CredentialAccessPolicy;
  eventContext: EventFactoryContext;
  limits: LeaseLimits;
  now: Clock;
}

/**
 * Just-in-time leases: granted to a principal allowed to `use` the secret for a tool,
 * redeemed once (or `uses` times) by the service that runs the tool. The rules are the
 * pure `leases.decider.ts`; the service reads (grouped), decides, decrypts, and commits
 * the decided event with its row change through the lease repository's group commit,
 * which re-checks atomically what may have changed since the read. Not through the
 * CommandHandler: a lease's state is its row (the stream's projection), read by token
 * hash in a group, and each commit is one statement for many leases; that is what the
 * lease path's throughput rests on (README, Performance).
 */
export class LeasesService {
  private readonly decider: Decider<LeaseState, LeaseCommand, LeaseEvent>;

  constructor(private readonly d: LeasesServiceDependencies) {
    this.decider = leasesDecider(d.limits);
  }

  /**
   * `authorization`: the header the caller presented (an agent's token goes to the policy
   * service with the decision); it stays out of the lease, its event and the answer.
   */
  async grant(principal: Principal, input: { secretId: string; sessionId: string; tool: string; ttlSeconds?: number; uses?: number }, authorization?: string): Promise<LeaseGrant> {
    const secret = await this.d.repo.secretForLease(principal.tenantId, input.secretId);
    if (!secret) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'use', secret, tool: input.tool, authorization });
    const now = this.d.now();
    const leaseId = newEventId();
    const metadata = { tenantId: principal.tenantId, actor: actorOf(principal), now };
    const [granted] = this.decider.decide({ type: 'grant', data: { ...input, leaseId, secretState: secret.state }, metadata }, this.decider.initialState()) as [LeaseGranted];
    const token = newLeaseToken();
    const { expiresAt, uses } = granted.data;
    await this.d.repo.grant({
      event: envelopeOf(this.d.eventContext, metadata, granted),
      lease: {
        leaseId,
        tokenHash: hashToken(token),
        tenantId: principal.tenantId,
        secretId: input.secretId,
        sessionId: input.sessionId,
        tool: input.tool,
        expiresAt: new Date(expiresAt),
        uses,
        usesLeft: uses,
        grantedBy: `${principal.type}:${principal.id}`,
        createdAt: now,
      },
    });
    return { leaseId, token, secretId: input.secretId, sessionId: input.sessionId, tool: input.tool, uses, expiresAt };
  }

  /**
   * Redeems a lease for the service that runs the tool. The value is released only after
   * the `credential.secret.read` event committed, in the same transaction that took the
   * lease's use; a lease for another tenant, session or tool is not found.
   */
  async redeem(caller: ServiceName, input: { token: string; tenantId: string; sessionId: string; tool: string }): Promise<Redemption> {
    if (!isLeaseToken(input.token)) throw new PalisadeError('validation', 'token: not a lease token');
    const now = this.d.now();
    const row = await this.d.repo.findByToken(hashToken(input.token));
    const metadata = { tenantId: input.tenantId, actor: { type: 'service' as const, id: caller }, now };
    const command: LeaseCommand = {
      type: 'redeem',
      data: {
        sessionId: input.sessionId,
        tool: input.tool,
        consumer: caller,
        secret: { state: row?.secretState ?? null, version: row?.material?.version ?? null, keyState: row?.kek?.state ?? null },
      },
      metadata,
    };
    const [read] = this.decider.decide(command, stateOf(row, input.tenantId));
    // The decision passed, so the lease, its material and its KEK are there.
    const { material, kek } = row as RedemptionRow & { material: NonNullable<RedemptionRow['material']>; kek: NonNullable<RedemptionRow['kek']> };
    const value = await this.d.material.decrypt(material, kek, { tenantId: row!.tenantId, secretId: row!.secretId, version: material.version });
    let use: number | undefined;
    try {
      use = await this.d.repo.redeem({
        leaseId: row!.leaseId,
        tenantId: row!.tenantId,
        secretId: row!.secretId,
        version: material.version,
        kekVersion: material.kekVersion,
        now,
        event: envelopeOf(this.d.eventContext, metadata, read),
      });
    } catch (error) {
      value.fill(0);
      throw error;
    }
    if (use === undefined) {
      value.fill(0);
      throw new PalisadeError('illegal_state', 'lease already used or expired, or its secret or key was revoked');
    }
    const text = value.toString('utf8');
    value.fill(0);
    return { leaseId: row!.leaseId, secretId: row!.secretId, version: material.version, value: text };
  }
}

/** The lease row as the decider's state; another tenant's lease is no lease at all. */
function stateOf(row: RedemptionRow | undefined, tenantId: string): LeaseState {
  if (!row || row.tenantId !== tenantId) return { status: 'none', uses: 0, usesLeft: 0 };
  return {
    status: 'granted',
    leaseId: row.leaseId,
    secretId: row.secretId,
    sessionId: row.sessionId,
    tool: row.tool,
    expiresAt: row.expiresAt.toISOString(),
    uses: row.uses,
    usesLeft: row.usesLeft,
  };
}
