import type { Response } from 'express';
import { z } from 'zod';
import { PalisadeError } from '@palisade/contracts';

/**
 * Parses one part of a request (body, query, a path parameter) with its zod schema: the
 * value, or a 400 `validation` error whose message names each bad field. An absent
 * body is parsed as `{}`, so "name: required" is said rather than "expected object".
 * `where` names the part when a problem is about the whole of it.
 */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where = 'body'): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : where}: ${i.message}`);
  throw new PalisadeError('validation', problems.join('; '), problems);
}

/** The OpenAPI schema of a zod schema, so the docs say what the validation does. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return json;
}

/**
 * `If-Match` as the stream version it names: `"3"` or `W/"3"` → 3 (the ETags the
 * services send); absent or `*` (any current version, RFC 9110) → undefined. Anything
 * else, an unquoted number included, is a 400: a precondition that cannot be read must
 * not be taken as no precondition.
 */
export function ifMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return undefined;
  const m = /^(?:W\/)?"(\d{1,9})"$/.exec(value);
  if (!m) throw new PalisadeError('validation', 'If-Match: must be an ETag such as "3"');
  return Number(m[1]);
}

/** Sets the view's version as the response's ETag (what `ifMatch` reads back), and returns the view. */
export function withEtag<V extends { etag: number }>(res: Response, view: V): V {
  res.setHeader('etag', `"${view.etag}"`);
  return view;
}
