import { z } from 'zod';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/);

/**
 * The usage event the router and the orchestrator publish through their outbox
 * (`llm-router.usage.recorded`, `sandbox-orchestrator.usage.recorded`): the settlement of
 * the hold `requestId` with the actual cost, when they settle asynchronously instead of
 * asking `palisade.rpc.billing.settle`. Both paths meet on the request id: whichever comes
 * first settles, the other gets the first answer.
 *
 * A stable, documented contract (README, "Metering"): fields are only ever added, and
 * optional. Since issue 15's second part:
 * - `teamId`, `userId` (the agent's team and the user it acts for, from its token) with
 *   `agentId`: a usage billing holds nothing for (no reserve reached it) is posted late
 *   instead of dropped, on those budgets' accounts of the period of `occurredAt`;
 * - `occurredAt` (ISO 8601): when the usage happened; default the event's `occurredAt`;
 * - `revision` (default 0): a correction of the request's usage republishes it with the
 *   corrected total `actualMicros` and a higher revision; a lower or equal one, once a
 *   higher was posted, changes nothing.
 */
export const usageRecordedSchema = z.object({
  requestId: id,
  agentId: id.optional(),
  /** The budget allotment the request was served from (llm-router): settled against it, as the settle request naming it is. */
  allotmentId: id.optional(),
  teamId: id.nullable().optional(),
  userId: id.nullable().optional(),
  actualMicros: z.string().regex(/^\d{1,16}$/),
  model: z.string().min(1).max(200).nullable().optional(),
  usage: z.array(z.object({ kind: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/), quantity: z.number().nonnegative().finite() })).max(32).optional(),
  occurredAt: z.string().datetime({ offset: true }).optional(),
  revision: z.number().int().min(0).max(1_000_000).optional(),
});
