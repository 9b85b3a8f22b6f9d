import { z } from 'zod';

const seq = z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(Number.MAX_SAFE_INTEGER);

export const verifyRangeQuerySchema = z
  .strictObject({
    partition: z.coerce.number().int('must be an integer').min(0, 'must be at least 0').max(100_000),
    fromSeq: seq.optional(),
    toSeq: seq.optional(),
  })
  .refine((q) => q.fromSeq === undefined || q.toSeq === undefined || q.fromSeq <= q.toSeq, { message: 'fromSeq must not exceed toSeq', path: ['toSeq'] });

export type VerifyRangeQuery = z.infer<typeof verifyRangeQuerySchema>;
