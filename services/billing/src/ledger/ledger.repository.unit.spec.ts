import * as pg from 'pg';
import { PalisadeError } from '@palisade/contracts';
import { decideAgain, inlineParameters, isStaleRows, mapError, quoteLiteral } from './ledger.repository';

describe('ledger repository: literals written into a statement', () => {
  it("quotes exactly as node-postgres's escapeLiteral does, quotes and backslashes included", () => {
    const alphabet = ["'", '\\', '"', '$', '1', 'a', 'é', '{', '}', ',', ' ', '\n', '😀'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const samples = ['', "o'brien", 'back\\slash', `'\\'`, '{"a":"b\\"c"}', "''\\\\''"];
    for (let i = 0; i < 500; i++) samples.push(Array.from({ length: next() % 40 }, () => alphabet[next() % alphabet.length]).join(''));
    for (const s of samples) expect(quoteLiteral(s)).toBe(pg.escapeLiteral(s));
  });

  it('writes each parameter in by its text form', () => {
    expect(inlineParameters('SELECT $1::text[], $2, $3', [["x'y", 'b\\c'], null, 5])).toBe(`SELECT  E'{"x''y","b\\\\\\\\c"}'::text[], NULL, '5'`);
    expect(() => inlineParameters('SELECT $2', [1])).toThrow(/\$2/);
  });
});

describe('ledger repository: errors', () => {
  it('a request id taken for new that another instance holds is stale rows (40L01), like a changed row; other failures are not', () => {
    const pg = (code: string, constraint?: string) => Object.assign(new Error(code), { code, constraint });
    expect(isStaleRows(pg('40L01'))).toBe(true);
    expect(isStaleRows(mapError(pg('23505', 'holds_pkey')))).toBe(true);
    for (const other of [pg('23505', 'usage_lines_request'), pg('40P01'), pg('57P01'), new Error('x'), null]) expect(isStaleRows(mapError(other))).toBe(false);
    expect(mapError(pg('23514', 'budget_periods_within_limit'))).toBeInstanceOf(PalisadeError);
  });

  it('a batch is decided again under the lock on stale rows, a deadlock or a serialization failure, and on nothing else', () => {
    const pg = (code: string, constraint?: string) => Object.assign(new Error(code), { code, constraint });
    for (const again of [pg('40L01'), mapError(pg('23505', 'holds_pkey')), mapError(pg('40P01')), mapError(pg('40001'))]) expect(decideAgain(again)).toBe(true);
    for (const other of [pg('23505', 'usage_lines_request'), pg('57P01'), mapError(pg('23514', 'budget_periods_within_limit')), new Error('x'), null, undefined]) {
      expect(decideAgain(mapError(other))).toBe(false);
    }
  });
});
