import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, 'must be 1-128 letters, digits or _.:@- ');
const micros = z.string().regex(/^\d{1,16}$/, 'must be a whole number of micro-units as a decimal string (at most 16 digits)');
const tenantId = z.string().regex(TENANT_ID, 'must be a tenant id');

/** `palisade.rpc.billing.reserve`: hold `amountMicros` on the agent, its team, its user and the tenant (or, with `minAmountMicros`, an allotment for that scope). The caller passes the agent and team from the agent's verified token. */
export const reserveSchema = z.strictObject({
  tenantId,
  requestId: id,
  agentId: id,
  teamId: id.nullable().optional(),
  userId: id.nullable().optional(),
  amountMicros: micros,
  /**
   * An allotment (`requestId` is its id): a block for this scope that the caller serves its following
   * requests' reservations from, each settled with `allotmentId`. Granted `amountMicros` up to half the least
   * headroom of its hard levels, never below this (the asking request's own worst case), else refused as a
   * reserve of this is. The llm-router's alone (ledger.service.ts `mayAllot`).
   */
  minAmountMicros: micros.optional(),
  ttlMs: z.number().int().min(1000).max(3_600_000).default(60_000),
});

const usage = z.array(z.strictObject({ kind: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/), quantity: z.number().nonnegative().finite() })).max(32);

/** `palisade.rpc.billing.settle`: the actual cost (µ-units, rounded up once by the caller's pricing) and, for the usage line, the model and quantities. */
export const settleSchema = z.strictObject({
  tenantId,
  requestId: id,
  actualMicros: micros,
  model: z.string().min(1).max(200).nullable().optional(),
  usage: usage.optional(),
  /** A correction: a higher revision than the one posted replaces the request's posted total (default 0, the original). */
  revision: z.number().int().min(0).max(1_000_000).optional(),
  /** A request served from this allotment (no reserve of its own): its cost is drawn from the allotment. */
  allotmentId: id.optional(),
});

export const releaseSchema = z.strictObject({ tenantId, requestId: id });

/** `palisade.rpc.billing.remaining`: what an agent may still spend. */
export const remainingSchema = z.strictObject({ tenantId, agentId: id, teamId: id.nullable().optional(), userId: id.nullable().optional() });
