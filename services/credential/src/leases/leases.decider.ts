import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { LeaseEvent } from './leases.events';

/**
 * THE lease rules, in one place and pure: who may be granted a lease on what, for how
 * long and how many uses, and when a redemption releases the value. The service decides
 * here, then commits through the lease repository; the repository's SQL re-checks the
 * conditions that can change between this decision and the commit (uses left, expiry,
 * secret still active at the version read, key not revoked) atomically, for concurrency
 * only, and refuses rather than decides. Change a rule here, not there.
 */

/** A lease as its stream (or the lease row, its projection) says. */
export interface LeaseState {
  status: 'none' | 'granted';
  leaseId?: string;
  secretId?: string;
  sessionId?: string;
  tool?: string;
  expiresAt?: string;
  uses: number;
  usesLeft: number;
}

export interface LeaseLimits {
  defaultTtlSeconds: number;
  /** Hard ceiling (60 s). */
  maxTtlSeconds: number;
  maxUses: number;
}

/** Key-encryption key states (the key ring's); only `active` and `retiring` keys unwrap. */
export type KeyState = 'active' | 'retiring' | 'retired' | 'revoked';

export type LeaseCommand =
  | Command<
      'grant',
      {
        leaseId: string;
        secretId: string;
        sessionId: string;
        tool: string;
        ttlSeconds?: number;
        uses?: number;
        /** The secret's state, read by the service (outside data). */
        secretState: 'active' | 'revoked' | 'shredded';
      }
    >
  | Command<
      'redeem',
      {
        sessionId: string;
        tool: string;
        /** The service the value is released to. */
        consumer: string;
        /** The secret's state, its current version and the state of the KEK that wraps it, read with the lease (outside data; null: missing). */
        secret: { state: string | null; version: number | null; keyState: KeyState | null };
      }
    >;

const NONE: LeaseState = { status: 'none', uses: 0, usesLeft: 0 };

export function leasesDecider(limits: LeaseLimits): Decider<LeaseState, LeaseCommand, LeaseEvent> {
  return {
    initialState: () => NONE,

    decide(command, state) {
      const now = command.metadata.now.getTime();
      if (command.type === 'grant') {
        const c = command.data;
        if (state.status !== 'none') throw new PalisadeError('conflict', 'lease already exists');
        if (c.secretState !== 'active') throw new PalisadeError('illegal_state', 'the secret is revoked');
        const ttl = c.ttlSeconds ?? limits.defaultTtlSeconds;
        if (ttl > limits.maxTtlSeconds) throw new PalisadeError('validation', `ttlSeconds: at most ${limits.maxTtlSeconds}`);
        const uses = c.uses ?? 1;
        if (uses > limits.maxUses) throw new PalisadeError('validation', `uses: at most ${limits.maxUses}`);
        const expiresAt = new Date(now + ttl * 1000).toISOString();
        return [{ type: 'credential.lease.granted', data: { leaseId: c.leaseId, secretId: c.secretId, sessionId: c.sessionId, tool: c.tool, expiresAt, uses } }];
      }
      const c = command.data;
      // Another tenant's lease is not there at all (the service passes no state for it).
      if (state.status === 'none' || state.sessionId !== c.sessionId || state.tool !== c.tool) throw new PalisadeError('not_found', 'lease not found');
      if (Date.parse(state.expiresAt!) <= now) throw new PalisadeError('illegal_state', 'lease expired');
      if (state.usesLeft <= 0) throw new PalisadeError('illegal_state', 'lease already used');
      if (c.secret.state !== 'active') throw new PalisadeError('illegal_state', 'the secret is revoked');
      if (c.secret.version === null || c.secret.keyState === null) throw new PalisadeError('illegal_state', 'the secret has no readable version');
      if (c.secret.keyState === 'revoked' || c.secret.keyState === 'retired') throw new PalisadeError('illegal_state', "the tenant's key-encryption key is revoked");
      return [
        {
          type: 'credential.secret.read',
          data: { secretId: state.secretId!, version: c.secret.version, leaseId: state.leaseId!, sessionId: state.sessionId!, tool: state.tool!, consumer: c.consumer },
        },
      ];
    },

    evolve(state, event) {
      switch (event.type) {
        case 'credential.lease.granted':
          return { status: 'granted', ...event.data, uses: event.data.uses, usesLeft: event.data.uses };
        case 'credential.secret.read':
          return { ...state, usesLeft: state.usesLeft - 1 };
      }
    },
  };
}
