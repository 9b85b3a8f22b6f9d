import { z } from 'zod';
import { PalisadeError } from '@palisade/contracts';
import { ifMatch, openApiSchema, parse } from './validation';

const body = z.strictObject({ name: z.string().min(1), size: z.number().int().optional() });

describe('parse', () => {
  it('returns the parsed value', () => {
    expect(parse(body, { name: 'a', size: 2 })).toEqual({ name: 'a', size: 2 });
  });

  it('is a validation error naming every bad field', () => {
    const error = (() => {
      try {
        parse(body, { name: '', size: 1.5 });
      } catch (e) {
        return e as PalisadeError;
      }
    })()!;
    expect(error).toBeInstanceOf(PalisadeError);
    expect(error.code).toBe('validation');
    expect(error.message).toMatch(/^name: .+; size: .+$/);
  });

  it('parses an absent body as {} and names the part for whole-value problems', () => {
    expect(() => parse(body, undefined)).toThrow(/^name: /);
    expect(() => parse(z.string().uuid(), 'x', 'id')).toThrow(/^id: /);
  });
});

describe('ifMatch', () => {
  it.each([
    ['"3"', 3],
    ['W/"3"', 3],
    [' "12" ', 12],
    ['*', undefined],
    [undefined, undefined],
  ])('reads %p as %p', (header, version) => {
    expect(ifMatch(header)).toBe(version);
  });

  it.each(['3', '"3', '"-1"', '"1e3"', '"9999999999"', 'garbage', '""'])('refuses %p with a 400', (header) => {
    expect(() => ifMatch(header)).toThrow(/If-Match/);
  });
});

describe('openApiSchema', () => {
  it('describes the input without the $schema member', () => {
    const schema = openApiSchema(body);
    expect(schema).not.toHaveProperty('$schema');
    expect(schema).toMatchObject({ type: 'object', properties: { name: { type: 'string' } } });
  });
});
