import { teamIdSchema } from '@palisade/contracts';
import { z } from 'zod';
import { catalogIdSchema } from '../catalog/catalog.dto';
import { CLASSIFICATIONS, type Classification } from '../completions/routing';
import { INJECTION_ACTIONS, PII_ACTIONS, TOOL_CALL_ACTIONS, type GuardPolicy, type InjectionAction, type PiiAction, type ToolCallAction } from './guard-policy.events';
import { ENTITY_TYPES, type EntityType } from './pii.detector';

const piiAction = z.enum(PII_ACTIONS as [PiiAction, ...PiiAction[]]);
const byEntity = z.partialRecord(z.enum(ENTITY_TYPES as [EntityType, ...EntityType[]]), piiAction);

/** `PUT /v1/router/guard-policy`: every part optional (absent = the default), unknown classes, entity types or actions refused by name. */
export const guardPolicySchema = z
  .strictObject({
    pii: z.partialRecord(z.enum(CLASSIFICATIONS as [Classification, ...Classification[]]), byEntity).optional(),
    injection: z.enum(INJECTION_ACTIONS as [InjectionAction, ...InjectionAction[]]).optional(),
    toolCalls: z.enum(TOOL_CALL_ACTIONS as [ToolCallAction, ...ToolCallAction[]]).optional(),
    classificationRules: z
      .array(
        z
          .strictObject({
            team: teamIdSchema.optional(),
            agent: z.uuid('must be an agent id (UUID)').optional(),
            model: catalogIdSchema.optional(),
            atLeast: z.enum(['internal', 'confidential', 'restricted']),
          })
          .refine((r) => r.team !== undefined || r.agent !== undefined || r.model !== undefined, 'a rule names at least one of team, agent, model'),
      )
      .max(256)
      .optional(),
    review: z
      .strictObject({
        tools: z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be a tool name of letters, digits, _ . : - (at most 128)')).max(64),
      })
      .optional(),
  })
  .transform(
    (p): GuardPolicy => ({
      // stored in a fixed order, so the same policy is the same event
      pii: Object.fromEntries(
        CLASSIFICATIONS.filter((c) => p.pii?.[c] && Object.keys(p.pii[c]!).length > 0).map((c) => [c, Object.fromEntries(ENTITY_TYPES.filter((t) => p.pii![c]![t]).map((t) => [t, p.pii![c]![t]]))]),
      ),
      injection: p.injection ?? 'flag',
      toolCalls: p.toolCalls ?? 'remove',
      // absent when empty, so a policy without review is the event it always was
      ...(p.review && p.review.tools.length > 0 ? { review: { tools: [...new Set(p.review.tools)].sort() } } : {}),
      // in the order given (the audit event names a rule by its position), fields in a fixed order
      ...(p.classificationRules && p.classificationRules.length > 0
        ? { classificationRules: p.classificationRules.map(({ team, agent, model, atLeast }) => ({ ...(team ? { team } : {}), ...(agent ? { agent } : {}), ...(model ? { model } : {}), atLeast })) }
        : {}),
    }),
  );
