import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';
import { ATTRIBUTE_NAME, NAME_PATTERN } from './model/policy.model';

// The one parse of every service (@palisade/service-kit).
export { parse } from '@palisade/service-kit';

export const nameSchema = z.string().regex(NAME_PATTERN, 'must be a name of letters, digits, _ . : - (at most 128)');
export const tenantIdSchema = z.string().regex(TENANT_ID, 'must be a tenant id');
export const idSchema = z.string().min(1).max(200);
export const attributeValueSchema = z.union([z.string().max(1024), z.number().finite(), z.boolean(), z.array(z.string().max(256)).max(256)]);
export const attributesSchema = z
  .record(z.string().regex(ATTRIBUTE_NAME, 'must be an attribute name'), attributeValueSchema)
  .refine((a) => Object.keys(a).length <= 64, 'at most 64 attributes');
/** A JSON object of at most `bytes` once serialized. */
export const boundedObject = (bytes: number) =>
  z.record(z.string(), z.unknown()).refine((v) => Buffer.byteLength(JSON.stringify(v)) <= bytes, `must be at most ${bytes} bytes as JSON`);
