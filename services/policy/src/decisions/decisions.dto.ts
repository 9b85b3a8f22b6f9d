import { z } from 'zod';
import { TENANT_ID, type ServiceName } from '@palisade/contracts';
import { ATTRIBUTE_NAME, NAME_PATTERN, type DecisionRequest } from '../model/policy.model';
import {
  ATTRIBUTE_LIST_ITEM_MAX,
  ATTRIBUTE_LIST_MAX,
  ATTRIBUTE_STRING_MAX,
  ATTRIBUTES_MAX,
  attributesSchema,
  boundedObject,
  ID_MAX,
  idSchema,
  nameSchema,
  parse,
  tenantIdSchema,
} from '../validation';

export const MAX_BATCH = 1000;
/** The longest access token a subject may carry. */
const TOKEN_MAX = 8192;

export const decisionRequestSchema = z.strictObject({
  tenantId: tenantIdSchema,
  subject: z.strictObject({
    type: z.enum(['user', 'agent', 'service']),
    id: idSchema,
    actingFor: idSchema.optional(),
    tenantId: tenantIdSchema.optional(),
    /** An agent's (or a user's) access token as presented to the asking service (verified here). */
    token: z.string().min(1).max(TOKEN_MAX).optional(),
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
 * A decision request as `parse(decisionRequestSchema, payload)` reads it, faster for the
 * requests services send: a payload of the common shape that plainly passes every rule
 * of the schema is taken as it is (the JSON just parsed, which nothing else holds);
 * anything else (parameters, fields, an approval token, any doubt) goes through the
 * schema, so what is refused is refused by zod with its messages. `plainRequest` accepts
 * only what the schema accepts (decisions.dto.unit.spec.ts checks it against the schema).
 */
export function parseDecisionRequest(payload: unknown): DecisionRequestDto {
  return plainRequest(payload) ? payload : parse(decisionRequestSchema, payload);
}

/** `parse(batchRequestSchema, payload)`, with the fast path of `parseDecisionRequest` for each request. */
export function parseBatchRequest(payload: unknown): { requests: DecisionRequestDto[] } {
  if (plainObject(payload, BATCH_KEYS)) {
    const { requests } = payload as { requests?: unknown };
    if (Array.isArray(requests) && requests.length >= 1 && requests.length <= MAX_BATCH && requests.every(plainRequest)) return { requests };
  }
  return parse(batchRequestSchema, payload);
}

const BATCH_KEYS = new Set(['requests']);
const REQUEST_KEYS = new Set(['tenantId', 'subject', 'action', 'resource', 'explain']);
const SUBJECT_KEYS = new Set(['type', 'id', 'actingFor', 'tenantId', 'token']);
const RESOURCE_KEYS = new Set(['type', 'id', 'tenantId', 'attributes']);
const SUBJECT_TYPES = new Set(['user', 'agent', 'service']);

/** An object straight from JSON (no other prototype) whose keys are all among `keys`. */
function plainObject(v: unknown, keys: ReadonlySet<string>): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const key in v) if (!keys.has(key)) return false;
  return true;
}

const isString = (v: unknown, min: number, max: number): v is string => typeof v === 'string' && v.length >= min && v.length <= max;
const isId = (v: unknown) => isString(v, 1, ID_MAX);
const isTenant = (v: unknown) => typeof v === 'string' && TENANT_ID.test(v);
const isName = (v: unknown) => typeof v === 'string' && NAME_PATTERN.test(v);

/** True only when `decisionRequestSchema` accepts `v` as it is (no parameters, fields or approval token: those go through the schema). */
function plainRequest(v: unknown): v is DecisionRequestDto {
  if (!plainObject(v, REQUEST_KEYS) || !isTenant(v.tenantId) || !isName(v.action)) return false;
  if (v.explain !== undefined && typeof v.explain !== 'boolean') return false;
  const { subject, resource } = v;
  if (!plainObject(subject, SUBJECT_KEYS) || !SUBJECT_TYPES.has(subject.type as string) || !isId(subject.id)) return false;
  if ((subject.actingFor !== undefined && !isId(subject.actingFor)) || (subject.tenantId !== undefined && !isTenant(subject.tenantId))) return false;
  if (subject.token !== undefined && !isString(subject.token, 1, TOKEN_MAX)) return false;
  if (!plainObject(resource, RESOURCE_KEYS) || !isName(resource.type)) return false;
  if ((resource.id !== undefined && !isId(resource.id)) || (resource.tenantId !== undefined && !isTenant(resource.tenantId))) return false;
  return resource.attributes === undefined || plainAttributes(resource.attributes);
}

function plainAttributes(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  let count = 0;
  for (const key in v) {
    if (++count > ATTRIBUTES_MAX || !ATTRIBUTE_NAME.test(key)) return false;
    const value = (v as Record<string, unknown>)[key];
    if (typeof value === 'string') {
      if (value.length > ATTRIBUTE_STRING_MAX) return false;
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return false;
    } else if (Array.isArray(value)) {
      if (value.length > ATTRIBUTE_LIST_MAX) return false;
      for (let i = 0; i < value.length; i++) if (!isString(value[i], 0, ATTRIBUTE_LIST_ITEM_MAX)) return false;
    } else if (typeof value !== 'boolean') return false;
  }
  return true;
}

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
