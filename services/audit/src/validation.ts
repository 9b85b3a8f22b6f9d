import { z } from 'zod';

// The one parse of every service (@palisade/service-kit): a 400 naming each bad field.
export { parse } from '@palisade/service-kit';

/** The earliest instant the record index (PostgreSQL timestamptz, which has no year 0) is asked about. */
export const EARLIEST_INDEX_MS = Date.parse('0001-01-01T00:00:00.000Z');

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** C0 controls (NUL included), DEL, C1 controls and the bidirectional overrides/isolates (U+202A–U+202E, U+2066–U+2069). */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/**
 * Why a text cannot be stored or shown as given, or undefined when it can: a NUL byte
 * (PostgreSQL text and jsonb refuse it), a lone UTF-16 surrogate (not encodable as
 * UTF-8: silently replaced on the way in), other control characters and bidirectional
 * overrides (they disguise what an operator reads).
 */
export function unsafeTextProblem(value: string): string | undefined {
  if (LONE_SURROGATE.test(value)) return 'must not contain a lone UTF-16 surrogate';
  if (UNSAFE_CHARACTERS.test(value)) return 'must not contain NUL, control or bidirectional-override characters';
  return undefined;
}

/** Whether PostgreSQL stores the text exactly as given: no NUL (refused) and no lone surrogate (replaced on the way in). */
export function storableText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** A non-empty text of at most `max` characters without NUL, lone surrogates, controls or bidi overrides. */
export const safeText = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `at most ${max} characters`)
    .superRefine((v, ctx) => {
      const problem = unsafeTextProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
