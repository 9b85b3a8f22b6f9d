import { apiKeySessionId } from '../api-keys/api-key-secret';
import { buildEvent, type EventEnvelope, type EventFactoryContext } from '@palisade/contracts';
import type { EventStore, InlineProjection, Transaction } from '@palisade/eventsourcing';
import type { RevocationTarget } from './revocations.events';

/** The instant of a revocation: `atMs` (ms) for verifiers, `at` (s) for those that predate it. */
const instant = (iso: string) => ({ at: Math.floor(Date.parse(iso) / 1000), atMs: Date.parse(iso) });

/** The revocation an auth event implies, if any. */
export function revocationOf(event: EventEnvelope): RevocationTarget | undefined {
  const d = event.data as Record<string, string>;
  switch (event.type) {
    case 'auth.user.signed-out':
    case 'auth.user.session-revoked':
      return { target: 'session', sessionId: d.sessionId, ...instant(event.occurredAt) };
    case 'auth.user.sessions-revoked':
    case 'auth.user.disabled':
      return { target: 'subject', subject: d.userId, ...instant(event.occurredAt) };
    case 'auth.signing-key.revoked':
      return { target: 'key', kid: d.kid };
    case 'auth.api-key.revoked':
      return { target: 'session', sessionId: apiKeySessionId(d.keyId), ...instant(event.occurredAt) };
    // An agent stopped: its tokens so far (resumed, it gets new ones). Every agent acting
    // for a revoked user is refused with that user (verifiers compare `act.sub` too).
    case 'auth.agent.suspended':
    case 'auth.agent.retired': {
      const through = (event.data as { revokedThroughMs?: number }).revokedThroughMs;
      const at = instant(event.occurredAt);
      return { target: 'subject', subject: d.agentId, ...(through !== undefined && through > at.atMs ? { at: Math.floor(through / 1000), atMs: through } : at) };
    }
    // A user left a team: their tokens so far (which list it) are refused; the session
    // lives on and its next refresh carries the teams of now.
    case 'auth.team-member.removed':
      return { target: 'subject', subject: d.userId, ...instant(event.occurredAt) };
    default:
      return undefined;
  }
}

/**
 * In the transaction of the event that implies it, appends `auth.revocation.issued` to
 * the stream `revocations-<tenant>`: the outbox publishes both or neither.
 */
export class RevocationIssuer implements InlineProjection {
  readonly name = 'revocations';
  readonly handles = ['auth.user.signed-out', 'auth.user.session-revoked', 'auth.user.sessions-revoked', 'auth.user.disabled', 'auth.signing-key.revoked', 'auth.api-key.revoked', 'auth.agent.suspended', 'auth.agent.retired', 'auth.team-member.removed'];

  constructor(
    private readonly store: EventStore,
    private readonly context: EventFactoryContext,
  ) {}

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    for (const event of events) {
      const revocation = revocationOf(event);
      if (!revocation) continue;
      const issued = buildEvent(
        { ...this.context, now: () => new Date(event.occurredAt) },
        { type: 'auth.revocation.issued', tenantId: event.tenantId, actor: event.actor, data: { ...revocation, cause: event.type } },
      );
      await this.store.appendToStream(tx, `revocations-${event.tenantId}`, [issued], 'any');
    }
  }
}
