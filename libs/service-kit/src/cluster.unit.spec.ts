import { ConfigError } from '@palisade/config';
import { workerCount } from './cluster';

describe('workerCount', () => {
  const option = { env: 'LLM_ROUTER_WORKERS', default: () => 2 };

  it('is 1 for a service without the option, whatever the environment says', () => {
    expect(workerCount(undefined, { LLM_ROUTER_WORKERS: '4' })).toBe(1);
  });

  it('takes the default when the variable is unset or empty, kept within 1..16', () => {
    expect(workerCount(option, {})).toBe(2);
    expect(workerCount(option, { LLM_ROUTER_WORKERS: '' })).toBe(2);
    expect(workerCount({ env: 'X', default: () => 64 }, {})).toBe(16);
    expect(workerCount({ env: 'X', default: () => 0 }, {})).toBe(1);
  });

  it.each([['1', 1], ['2', 2], ['16', 16], [' 3 ', 3]])('reads %j as %d', (raw, n) => {
    expect(workerCount(option, { LLM_ROUTER_WORKERS: raw })).toBe(n);
  });

  it.each(['0', '17', '-1', '1.5', '2x', 'two', '1e1', '0x2'])('refuses %j, naming the variable', (raw) => {
    let thrown: unknown;
    try {
      workerCount(option, { LLM_ROUTER_WORKERS: raw });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems).toEqual([`LLM_ROUTER_WORKERS: must be an integer from 1 to 16 (got ${JSON.stringify(raw)})`]);
  });
});
