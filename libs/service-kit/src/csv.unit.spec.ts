import { csvOf, spreadsheetSafe } from './csv';

describe('CSV exports', () => {
  it('neutralises formulas, keeps numbers (negative too) as numbers', () => {
    for (const formula of ['=HYPERLINK("x")', '+1', '@SUM(A1)', '\tx', '\rx', '-1+2', '-cmd|x']) expect(spreadsheetSafe(formula)).toBe(`'${formula}`);
    for (const value of ['-12', '-0.500000', '12', 'plain', "'=already"]) expect(spreadsheetSafe(value)).toBe(value);
  });

  it('quotes as RFC 4180 says, with the line ending asked for', () => {
    expect(csvOf([['a', 'b'], ['a,"b"', null], ['=HYPERLINK("x")', 3]], { crlf: true })).toBe(`a,b\r\n"a,""b""",\r\n"'=HYPERLINK(""x"")",3\r\n`);
    expect(csvOf([['line\nbreak', '-5']])).toBe('"line\nbreak",-5\n');
    expect(csvOf([])).toBe('');
  });
});
