import { z } from 'zod';
import { ATTRIBUTE_NAME, COMPARISON_OPS, type Condition } from '../model/policy.model';
import { attributesSchema, idSchema, nameSchema } from '../validation';

const subject = z.string().min(3).max(140);
export const assignmentsSchema = z.strictObject({
  assignments: z.array(z.strictObject({ subject, role: nameSchema })).min(1).max(1000),
});
export const roleSchema = z.strictObject({ inherits: z.array(nameSchema).max(32).default([]) });
export const attributeDefinitionSchema = z.strictObject({
  target: z.enum(['subject', 'resource']),
  type: z.enum(['string', 'string[]', 'number', 'boolean', 'level']),
  levels: z.array(z.string().min(1).max(64)).max(32).optional(),
});
export const attributeNameSchema = z.string().regex(ATTRIBUTE_NAME, 'must be a camelCase attribute name');
export const subjectAttributesSchema = z.strictObject({ attributes: attributesSchema });
export const toolsSchema = z.strictObject({ tools: z.array(nameSchema).max(1000) });
export const criticalActionsSchema = z.strictObject({ actions: z.array(nameSchema).max(200) });
export const subjectParamSchema = subject;
export const agentIdSchema = idSchema;

const scalar = z.union([z.string().max(1024), z.number().finite(), z.boolean(), z.array(z.string().max(256)).max(256)]);
const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(conditionSchema).min(1).max(16) }),
    z.strictObject({ any: z.array(conditionSchema).min(1).max(16) }),
    z.strictObject({ not: conditionSchema }),
    z.strictObject({ attr: z.string().max(80), op: z.enum(COMPARISON_OPS as [string, ...string[]]), value: scalar.optional(), ref: z.string().max(80).optional() }),
  ]),
) as z.ZodType<Condition>;

export const ruleSchema = z.strictObject({
  id: nameSchema,
  effect: z.enum(['allow', 'deny', 'mask']),
  subject,
  resource: z.string().min(1).max(128),
  action: z.string().min(1).max(128),
  when: conditionSchema.optional(),
  fields: z.array(z.string().min(1).max(128)).min(1).max(256).optional(),
});
export const policyDocumentSchema = z.strictObject({ rules: z.array(ruleSchema).max(500, 'at most 500 rules per policy') });
export const rollbackSchema = z.strictObject({ toVersion: z.number().int().positive() });
