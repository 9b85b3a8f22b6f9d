import { embeddingsSchema } from './completions.dto';

describe('embeddingsSchema', () => {
  it('takes a string or strings', () => {
    expect(embeddingsSchema.safeParse({ model: 'm', input: 'hello' }).success).toBe(true);
    expect(embeddingsSchema.safeParse({ model: 'm', input: ['a', 'b'], encoding_format: 'float', dimensions: 256 }).success).toBe(true);
  });

  it.each([
    ['token arrays (they cannot be checked for personal data)', [1, 2, 3]],
    ['arrays of token arrays', [[1, 2]]],
    ['an empty string', ''],
    ['no inputs', []],
    ['too many inputs', Array.from({ length: 2049 }, () => 'x')],
  ])('refuses %s as invalid input naming the field', (_why, input) => {
    const parsed = embeddingsSchema.safeParse({ model: 'm', input });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0].path).toEqual(['input']);
  });
});
