import type { ExecutionContext } from '@nestjs/common';
import { EdgeTextGuard, isUnsafeText, unsafeRequestField, unsafeTextPath } from './edge-text';

describe('edge text validation', () => {
  it.each([
    ['a NUL byte', 'ab\u0000c'],
    ['a lone high surrogate', 'a\ud800b'],
    ['a lone low surrogate', '\udc00'],
    ['a high surrogate at the end', 'abc\udbff'],
    ['a right-to-left override', 'invoice\u202Efdp.exe'],
    ['a left-to-right embedding', '\u202A'],
    ['a first strong isolate', 'x\u2068y'],
    ['a pop directional isolate', '\u2069'],
  ])('refuses %s', (_what, text) => {
    expect(isUnsafeText(text)).toBe(true);
  });

  it('accepts ordinary text in any script, emoji (paired surrogates) and other controls it does not name', () => {
    for (const text of ['', 'alice', 'Ωμέγα', 'שלום', 'مرحبا', '日本語', '👩‍💻 ok', 'tab\tand\nnewline', '\u200F']) expect(isUnsafeText(text)).toBe(false);
  });

  it('names the first unsafe field of a nested body, keys included', () => {
    expect(unsafeTextPath({ name: 'ok', rules: [{ id: 'r1' }, { id: 'r\u00002' }] })).toBe('rules[1].id');
    expect(unsafeTextPath({ a: { ['k\ud800']: 1 } })).toBe('a.k\ud800');
    expect(unsafeTextPath(['x', ['y', '\u202E']])).toBe('[1][1]');
    expect(unsafeTextPath('\u0000')).toBe('');
    expect(unsafeTextPath({ n: 1, b: true, z: null, s: 'fine', list: ['a', 'b'] })).toBeUndefined();
    expect(unsafeTextPath(undefined)).toBeUndefined();
  });

  it('a lone surrogate written as a JSON escape arrives as one and is found', () => {
    const body = JSON.parse('{"username":"al\\ud800ice","password":"x"}');
    expect(unsafeTextPath(body)).toBe('username');
  });

  it('walks a deeply nested body without exhausting the stack', () => {
    let deep: unknown = 'bad\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(unsafeTextPath(deep)).toMatch(/^(\[0\]){100000}$/);
  });

  it('checks path parameters, the query and the body, naming where', () => {
    expect(unsafeRequestField({ params: { tenant: 'a\u0000' }, query: {}, body: {} })).toEqual({ field: 'tenant', location: 'path' });
    expect(unsafeRequestField({ params: {}, query: { actor: '\ud800' }, body: undefined })).toEqual({ field: 'actor', location: 'query' });
    expect(unsafeRequestField({ params: {}, query: {}, body: { name: 'k\u2066' } })).toEqual({ field: 'name', location: 'body' });
    expect(unsafeRequestField({ params: {}, query: {}, body: 'raw\u0000' })).toEqual({ field: 'body', location: 'body' });
    // A field name that is itself unsafe is named with escapes, never echoed as is.
    expect(unsafeRequestField({ params: {}, query: {}, body: { ['evil\u202Ekey']: 'x' } })).toEqual({ field: 'evil\\u202ekey', location: 'body' });
    expect(unsafeRequestField({ params: { id: 'u-1' }, query: { limit: '10' }, body: { name: 'Key 1' } })).toBeUndefined();
  });

  it('the guard refuses with a 400 (validation) naming the field, and lets safe text through', () => {
    const guard = new EdgeTextGuard();
    const http = (req: object) => ({ getType: () => 'http', switchToHttp: () => ({ getRequest: () => req }) }) as unknown as ExecutionContext;
    expect(() => guard.canActivate(http({ params: {}, query: {}, body: { name: 'key\u0000' } }))).toThrow(
      expect.objectContaining({ code: 'validation', message: expect.stringMatching(/^name: must not contain NUL/), details: { field: 'name', location: 'body' } }),
    );
    expect(() => guard.canActivate(http({ params: { id: '\u202e' }, query: {}, body: {} }))).toThrow(expect.objectContaining({ details: { field: 'id', location: 'path' } }));
    expect(guard.canActivate(http({ params: {}, query: {}, body: { name: 'key' } }))).toBe(true);
  });
});
