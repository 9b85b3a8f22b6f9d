import type { Actor, EventFactoryContext } from '@palisade/contracts';
import { envelopeOf, streamName, type EventStore } from '@palisade/eventsourcing';
import type { EgressAuditSink } from './egress.audit';
import type { EgressEvent } from './egress.events';

const SELF: Actor = { type: 'service', id: 'sandbox-orchestrator' };

/** Whose a sandbox is: the proxy knows a sandbox by its link only. */
export type SandboxOwner = (sandboxId: string) => Promise<{ tenantId: string; sessionId: string } | undefined>;

/** Owners looked up at most once per `ttlMs` per sandbox (a connection should not cost a query). */
export function cachedOwner(owner: SandboxOwner, ttlMs = 5000): SandboxOwner {
  const cache = new Map<string, { at: number; value: Awaited<ReturnType<SandboxOwner>> }>();
  return async (sandboxId) => {
    const hit = cache.get(sandboxId);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value;
    const value = await owner(sandboxId);
    if (cache.size > 10_000) cache.clear();
    cache.set(sandboxId, { at: Date.now(), value });
    return value;
  };
}

/** The batches as events of the sandbox's tenant, in stream `egress-<sandboxId>` (the event store is the outbox). */
export function eventStoreSink(store: EventStore, eventContext: EventFactoryContext, owner: SandboxOwner): EgressAuditSink {
  return async (batch) => {
    const o = await owner(batch.sandboxId);
    if (!o) return;
    const event: EgressEvent = { type: 'sandbox-orchestrator.egress.decisions_recorded', data: { sandboxId: batch.sandboxId, sessionId: o.sessionId, decisions: batch.decisions, dropped: batch.dropped } };
    const envelope = envelopeOf(eventContext, { tenantId: o.tenantId, actor: SELF, now: eventContext.now() }, event);
    await store.inTransaction((tx) => store.appendToStream(tx, streamName('egress', batch.sandboxId), [envelope], 'any'));
  };
}
