import { ExecutionTokens } from '../egress/egress.execution-tokens';
import type { SandboxRuntime } from '../runtime/runtime.port';
import { bot, outcome as outcomeOf, runtimeOf, serviceHarness } from '../../test/sandboxes.memory';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import type { SandboxesService } from './sandboxes.service';

/**
 * The caller's token is held for the egress proxy's lease grants exactly while its
 * execution runs: from before the program starts until its end, whatever the end.
 */
const outcome = outcomeOf();

describe('SandboxesService: the execution token for the egress proxy', () => {
  let tokens: ExecutionTokens;
  let seenDuringRun: Array<string | undefined>;
  let runtimeExec: SandboxRuntime['exec'];
  let decide: (request: AuthorizeRequest) => AuthorizeDecision;
  let service: SandboxesService;
  let sandboxId: string;

  beforeEach(async () => {
    tokens = new ExecutionTokens();
    seenDuringRun = [];
    decide = () => ({ decision: 'allow', rule: 'test', reason: 'ok' });
    runtimeExec = runtimeOf(async (id) => {
      seenDuringRun.push(tokens.tokenFor(id));
      return outcome;
    });
    const h = serviceHarness({ executionTokens: tokens });
    h.runtimeExec = (...a: Parameters<SandboxRuntime['exec']>) => runtimeExec(...a);
    h.decide = (r) => decide(r);
    service = h.service;
    sandboxId = (await service.create(bot, 's1', 'small')).id;
  });

  it('holds the token while the program runs and releases it when it ends', async () => {
    await service.exec(bot, sandboxId, { command: ['/bin/true'] });
    expect(seenDuringRun).toEqual(['the.agent.token']);
    expect(tokens.size()).toBe(0);
  });

  it('releases it when the run fails or the runtime throws', async () => {
    runtimeExec = runtimeOf(async (id) => {
      seenDuringRun.push(tokens.tokenFor(id));
      throw new Error('runtime lost it');
    });
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow('runtime lost it');
    expect(seenDuringRun).toEqual(['the.agent.token']);
    expect(tokens.size()).toBe(0);
    runtimeExec = () => {
      throw new Error('could not start');
    };
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow('could not start');
    expect(tokens.size()).toBe(0);
  });

  it('holds nothing when the policy refuses the execution', async () => {
    decide = (r) => (r.action === 'invoke' ? { decision: 'deny', rule: 'agent-tool-allowlist', reason: 'no' } : { decision: 'allow', rule: 'test', reason: 'ok' });
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow(/agent-tool-allowlist/);
    expect(seenDuringRun).toEqual([]);
    expect(tokens.size()).toBe(0);
  });
});
