import type { z } from 'zod';
import { PalisadeError } from '@palisade/contracts';

/** Parse an input with a zod schema; a bad input is a 400 naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue.path.length > 0 ? issue.path.join('.') : where;
  throw new PalisadeError('validation', `${where} ${field}: ${issue.message}`);
}
