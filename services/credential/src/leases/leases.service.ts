import { PalisadeError, newEventId, type EventFactoryContext, type Principal, type ServiceName } from '@palisade/contracts';
import { envelopeOf, type Decider } from '@palisade/eventsourcing';
import { LRUCache } from 'lru-cache';
import { authorize, type CredentialAccessPolicy } from '../access/access-policy';
import { actorOf, type Clock } from '../credential.settings';
import type { SecretMaterial } from '../crypto/secret-material';
import { hashToken, isLeaseToken, newLeaseToken } from './lease-token';
import { leasesDecider, type LeaseCommand, type LeaseLimits, type LeaseState } from './leases.decider';
import type { LeaseEvent, LeaseGranted } from './leases.events';
import type { LeaseRow, LeaseSecretRow, LeasesRepository, RedemptionRow } from './leases.repository';

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

/** Leases granted here and not yet redeemed, remembered for their redemption (each at most until it expires). */
const HANDED_OVER = 10_000;
/** Secret rows remembered from grants, for the next grant of the same secret (least recently granted dropped first). */
const REMEMBERED_SECRETS = 10_000;
/** How long a remembered secret row is used (then read again), so nothing read stays in memory longer than a lease lives. */
const REMEMBER_SECRET_MS = 60_000;
/** Decisions on a secret that keeps changing under the grant before it is refused as a conflict. */
const GRANT_ATTEMPTS = 3;

interface GrantInput {
  secretId: string;
  sessionId: string;
  tool: string;
  ttlSeconds?: number;
  uses?: number;
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
 *
 * A grant reads, with the secret, what the redemption will need (the current version's
 * material and its KEK) and hands it over to the redemption in memory, by token hash: a
 * lease redeemed on the instance that granted it is decided on that row without reading
 * it again. Nothing is trusted that may have changed since: the redemption's statement
 * re-checks uses left, expiry, the secret's state and version and the KEK's state, and
 * when the handed-over row is refused (by the decider, the decryption or that statement)
 * the lease is read afresh and decided again, exactly as without the hand-over.
 */
export class LeasesService {
  private readonly decider: Decider<LeaseState, LeaseCommand, LeaseEvent>;
  /**
   * Granted leases by token hash (base64), with their secret's material as the grant read it.
   * A Map, not an lru-cache: it empties whenever the leases in flight are all redeemed, and
   * lru-cache's delete of its last entry clears its preallocated arrays (O(max): 35–65 µs at
   * 10,000, measured), which a quiet vault would pay at nearly every redemption.
   */
  private readonly handedOver = new Map<string, RedemptionRow>();
  /** No lease in `handedOver` expires before this (epoch ms; earlier when nothing was pruned yet). */
  private firstExpiry = 0;
  /** Secret rows a grant was written on, by tenant and secret id, each used for REMEMBER_SECRET_MS after it was read. */
  private readonly rememberedSecrets: LRUCache<string, LeaseSecretRow>;

  constructor(private readonly d: LeasesServiceDependencies) {
    this.decider = leasesDecider(d.limits);
    // Ages on the service's clock, read at every look-up (ttlResolution 0), so an expiry is never late.
    this.rememberedSecrets = new LRUCache({ max: REMEMBERED_SECRETS, ttl: REMEMBER_SECRET_MS, perf: { now: () => d.now().getTime() }, ttlResolution: 0 });
  }

  /**
   * `authorization`: the header the caller presented (an agent's token goes to the policy
   * service with the decision); it stays out of the lease, its event and the answer.
   *
   * Decided on the secret row remembered from an earlier grant when there is one (no read:
   * the grant is then one statement), else on a fresh read. Either way the access policy
   * and the decider see the row, and the grant's statement writes the lease only while
   * the secret is still that row (same stream version) and active; when it is not, the
   * grant is asked and decided again on a fresh read, as if nothing had been remembered.
   */
  async grant(principal: Principal, input: GrantInput, authorization?: string): Promise<LeaseGrant> {
    const secretKey = `${principal.tenantId}\u0000${input.secretId}`;
    let secret = this.rememberedSecrets.get(secretKey);
    for (let attempt = 1; ; attempt++) {
      secret ??= await this.d.repo.secretForLease(principal.tenantId, input.secretId);
      if (!secret) throw new PalisadeError('not_found', 'secret not found');
      const granted = await this.grantOn(secret, secretKey, principal, input, authorization);
      if (granted) return granted;
      // The secret changed since the row the grant was decided on: decided again on a fresh read.
      this.rememberedSecrets.delete(secretKey);
      if (attempt >= GRANT_ATTEMPTS) throw new PalisadeError('conflict', 'the secret changed while the lease was granted; try again');
      secret = undefined;
    }
  }

  /** One decision of a grant on this secret row: the lease granted, or undefined when the statement found the secret no longer that row. */
  private async grantOn(secret: LeaseSecretRow, secretKey: string, principal: Principal, input: GrantInput, authorization: string | undefined): Promise<LeaseGrant | undefined> {
    await authorize(this.d.policy, { principal, action: 'use', secret, tool: input.tool, authorization });
    const now = this.d.now();
    const leaseId = newEventId();
    const metadata = { tenantId: principal.tenantId, actor: actorOf(principal), now };
    const [granted] = this.decider.decide({ type: 'grant', data: { ...input, leaseId, secretState: secret.state }, metadata }, this.decider.initialState()) as [LeaseGranted];
    const token = newLeaseToken();
    const { expiresAt, uses } = granted.data;
    const lease: LeaseRow = {
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
    };
    if (!(await this.d.repo.grant({ event: envelopeOf(this.d.eventContext, metadata, granted), lease, secretStreamVersion: secret.streamVersion }))) return undefined;
    // A row read now starts its REMEMBER_SECRET_MS; the remembered one keeps its own (the get made it the most recent).
    if (this.rememberedSecrets.get(secretKey) !== secret) this.rememberedSecrets.set(secretKey, secret);
    this.handOver(lease, secret, now);
    return { leaseId, token, secretId: input.secretId, sessionId: input.sessionId, tool: input.tool, uses, expiresAt };
  }

  /**
   * Redeems a lease for the service that runs the tool. The value is released only after
   * the `credential.secret.read` event committed, in the same transaction that took the
   * lease's use; a lease for another tenant, session or tool is not found.
   */
  async redeem(caller: ServiceName, input: { token: string; tenantId: string; sessionId: string; tool: string }): Promise<Redemption> {
    if (!isLeaseToken(input.token)) throw new PalisadeError('validation', 'token: not a lease token');
    const tokenHash = hashToken(input.token);
    const key = tokenHash.toString('base64');
    const handed = this.handedOver.get(key);
    if (handed) {
      const released = await this.release(caller, input, handed, true);
      if (released) {
        handed.usesLeft = Math.min(handed.usesLeft, handed.uses - released.use);
        if (handed.usesLeft <= 0) this.handedOver.delete(key);
        return released.redemption;
      }
      // Refused on the row as granted (a use elsewhere, expiry, a rotation or revocation since): decided again on a fresh read.
      this.handedOver.delete(key);
    }
    return (await this.release(caller, input, await this.d.repo.findByToken(tokenHash), false))!.redemption;
  }

  /**
   * Decides the redemption on `row`, decrypts, and commits the use with its read event:
   * the value once committed. With `handedOver` (a row as the grant read it), a refusal
   * of the decider, the decryption or the statement answers undefined (the caller reads
   * afresh); otherwise it is thrown. A failing statement is thrown either way.
   */
  private async release(
    caller: ServiceName,
    input: { tenantId: string; sessionId: string; tool: string },
    row: RedemptionRow | undefined,
    handedOver: boolean,
  ): Promise<{ redemption: Redemption; use: number } | undefined> {
    const now = this.d.now();
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
    let read: LeaseEvent;
    let value: Buffer;
    try {
      [read] = this.decider.decide(command, stateOf(row, input.tenantId));
      // The decision passed, so the lease, its material and its KEK are there.
      const { material, kek } = row as RedemptionRow & { material: NonNullable<RedemptionRow['material']>; kek: NonNullable<RedemptionRow['kek']> };
      value = await this.d.material.decrypt(material, kek, { tenantId: row!.tenantId, secretId: row!.secretId, version: material.version });
    } catch (error) {
      if (handedOver) return undefined;
      throw error;
    }
    const material = row!.material!;
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
      if (handedOver) return undefined;
      throw new PalisadeError('illegal_state', 'lease already used or expired, or its secret or key was revoked');
    }
    const text = value.toString('utf8');
    value.fill(0);
    return { redemption: { leaseId: row!.leaseId, secretId: row!.secretId, version: material.version, value: text }, use };
  }

  /** Remembers a lease just granted for its redemption here, while there is room (else it is read again then). */
  private handOver(lease: LeaseRow, secret: LeaseSecretRow, now: Date): void {
    if (!secret.material || !secret.kek) return;
    if (this.handedOver.size >= HANDED_OVER) {
      // full: drop the expired, scanning only once one may have expired (not at every grant while full)
      if (now.getTime() >= this.firstExpiry) {
        let first = Infinity;
        for (const [key, row] of this.handedOver) {
          const at = row.expiresAt.getTime();
          if (at <= now.getTime()) this.handedOver.delete(key);
          else if (at < first) first = at;
        }
        this.firstExpiry = first;
      }
      if (this.handedOver.size >= HANDED_OVER) return;
    }
    this.firstExpiry = Math.min(this.firstExpiry, lease.expiresAt.getTime());
    const { tokenHash: _hash, grantedBy: _by, createdAt: _at, ...row } = lease;
    this.handedOver.set(lease.tokenHash.toString('base64'), { ...row, secretState: secret.state, version: secret.material.version, material: secret.material, kek: secret.kek });
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
