import { z } from 'zod';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/);

/**
 * The usage event the router and the orchestrator publish through their outbox
 * (`llm-router.usage.recorded`, `sandbox-orchestrator.usage.recorded`): the settlement of
 * the hold `requestId` with the actual cost, when they settle asynchronously instead of
 * asking `palisade.rpc.billing.settle`. Both paths meet on the request id: whichever comes
 * first settles, the other gets the first answer.
 */
export const usageRecordedSchema = z.object({
  requestId: id,
  agentId: id.optional(),
  actualMicros: z.string().regex(/^\d{1,16}$/),
  model: z.string().min(1).max(200).nullable().optional(),
  usage: z.array(z.object({ kind: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/), quantity: z.number().nonnegative().finite() })).max(32).optional(),
});
