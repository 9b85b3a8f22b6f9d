import { z } from 'zod';
import { PalisadeError } from '@palisade/contracts';

/** Parses a request part; a bad input is a 400 naming the field. */
export function parse<T extends z.ZodType>(schema: T, input: unknown, where = 'body'): z.infer<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || where}: ${i.message}`);
  throw new PalisadeError('validation', problems.join('; '), problems);
}

/** OpenAPI schema of a zod schema, so the docs say what the validation does. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return json;
}

/** `If-Match: "3"` → 3; absent → undefined. */
export function ifMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:W\/)?"(\d{1,9})"$/.exec(header.trim());
  if (!m) throw new PalisadeError('validation', 'If-Match: must be an ETag such as "3"');
  return Number(m[1]);
}
