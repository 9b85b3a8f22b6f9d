import { z } from 'zod';
import { attributesSchema, boundedObject, idSchema, nameSchema, tenantIdSchema } from '../validation';

export const MAX_BATCH = 1000;

export const decisionRequestSchema = z.strictObject({
  tenantId: tenantIdSchema,
  subject: z.strictObject({
    type: z.enum(['user', 'agent', 'service']),
    id: idSchema,
    actingFor: idSchema.optional(),
    tenantId: tenantIdSchema.optional(),
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
