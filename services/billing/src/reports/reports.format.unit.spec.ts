import { focusCsv, FOCUS_COLUMNS, money } from './reports.format';

describe('report formats', () => {
  it('money is exact decimal from µ-units', () => {
    expect(money(0n)).toBe('0.000000');
    expect(money(1_234_567n)).toBe('1.234567');
    expect(money(900_000_000_000_000n)).toBe('900000000.000000');
  });
  it('CSV neutralises a formula a tenant could plant in a model name (service-kit csvOf)', () => {
    const out = focusCsv(
      [{ day: '2026-12-03', teamId: 'platform', agentId: 'bot', model: '-1+cmd|x', requests: 1, postedMicros: -500_000n, actualMicros: 0n, overrunMicros: 0n }],
      'EUR',
      () => ({ start: new Date('2026-12-02T16:00:00.000Z'), end: new Date('2026-12-03T16:00:00.000Z') }),
    );
    expect(out.trim().split('\r\n')[1]).toMatch(/^-0\.500000,-0\.500000,EUR,.*,'-1\+cmd\|x,platform,bot,/);
  });
  it('FOCUS rows: billed and effective cost, charge period, quantity, SkuId = model, SubAccountId = team', () => {
    const out = focusCsv(
      [{ day: '2026-12-03', teamId: 'platform', agentId: 'bot', model: 'gpt-x', requests: 3, postedMicros: 1_500_000n, actualMicros: 1_600_000n, overrunMicros: 100_000n }],
      'EUR',
      () => ({ start: new Date('2026-12-02T16:00:00.000Z'), end: new Date('2026-12-03T16:00:00.000Z') }),
    );
    const [header, row] = out.trim().split('\r\n');
    expect(header).toBe(FOCUS_COLUMNS.join(','));
    expect(row).toBe('1.500000,1.500000,EUR,2026-12-02T16:00:00.000Z,2026-12-03T16:00:00.000Z,Usage,3,Requests,gpt-x,platform,bot,"{""x_OverrunMicros"":""100000""}"');
  });
});
