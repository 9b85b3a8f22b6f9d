import { z } from 'zod';
import type { ServiceName } from '@palisade/contracts';
import type { DecisionRequest } from '../model/policy.model';
import { attributesSchema, boundedObject, idSchema, nameSchema, tenantIdSchema } from '../validation';

export const MAX_BATCH = 1000;

export const decisionRequestSchema = z.strictObject({
  tenantId: tenantIdSchema,
  subject: z.strictObject({
    type: z.enum(['user', 'agent', 'service']),
    id: idSchema,
    actingFor: idSchema.optional(),
    tenantId: tenantIdSchema.optional(),
    /** An agent's (or a user's) access token as presented to the asking service (verified here). */
    token: z.string().min(1).max(8192).optional(),
  }),
  action: nameSchema,
  resource: z.strictObject({
    type: nameSchema,
    id: idSchema.optional(),
    tenantId: tenantIdSchema.optional(),
    attributes: attributesSchema.optional(),
    fields: z.array(z.string().min(1).max(128)).max(512).optional(),
  }),
  parameters: boundedObject(16 * 1024).optional(),
  approvalToken: z.string().min(1).max(512).optional(),
  explain: z.boolean().optional(),
});

export const batchRequestSchema = z.strictObject({
  requests: z.array(decisionRequestSchema).min(1).max(MAX_BATCH, `at most ${MAX_BATCH} requests per batch`),
});

export type DecisionRequestDto = z.infer<typeof decisionRequestSchema>;

/**
 * A decision request as a service asks it: never with `explain` (which rule decided and
 * every attribute it read are for the tenant's policy administrators, not for the
 * services acting on the decision), and stamped with the asking service.
 */
export function askedByService(request: DecisionRequestDto, service: ServiceName | undefined): DecisionRequest {
  const { explain: _explain, ...rest } = request;
  void _explain;
  return service ? { ...rest, askedBy: service } : rest;
}
