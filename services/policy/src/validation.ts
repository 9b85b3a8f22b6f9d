import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';
import { ATTRIBUTE_NAME, NAME_PATTERN } from './model/policy.model';

// The one parse of every service (@palisade/service-kit).
export { parse } from '@palisade/service-kit';

export const nameSchema = z.string().regex(NAME_PATTERN, 'must be a name of letters, digits, _ . : - (at most 128)');
export const tenantIdSchema = z.string().regex(TENANT_ID, 'must be a tenant id');
/** The bounds of the schemas below, shared with the decisions' fast path (decisions.dto.ts). */
export const ID_MAX = 200;
export const ATTRIBUTE_STRING_MAX = 1024;
export const ATTRIBUTE_LIST_MAX = 256;
export const ATTRIBUTE_LIST_ITEM_MAX = 256;
export const ATTRIBUTES_MAX = 64;

export const idSchema = z.string().min(1).max(ID_MAX);
export const attributeValueSchema = z.union([
  z.string().max(ATTRIBUTE_STRING_MAX),
  z.number().finite(),
  z.boolean(),
  z.array(z.string().max(ATTRIBUTE_LIST_ITEM_MAX)).max(ATTRIBUTE_LIST_MAX),
]);
export const attributesSchema = z
  .record(z.string().regex(ATTRIBUTE_NAME, 'must be an attribute name'), attributeValueSchema)
  .refine((a) => Object.keys(a).length <= ATTRIBUTES_MAX, `at most ${ATTRIBUTES_MAX} attributes`);
/** A JSON object of at most `bytes` once serialized. */
export const boundedObject = (bytes: number) =>
  z.record(z.string(), z.unknown()).refine((v) => Buffer.byteLength(JSON.stringify(v)) <= bytes, `must be at most ${bytes} bytes as JSON`);
