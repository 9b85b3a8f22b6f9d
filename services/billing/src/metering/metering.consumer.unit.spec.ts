import { buildEvent, PalisadeError, systemEventContext } from '@palisade/contracts';
import { handleUsageRecorded } from './metering.consumer';

const event = (data: Record<string, unknown>) =>
  buildEvent(systemEventContext('llm-router'), { type: 'llm-router.usage.recorded', tenantId: 'acme', actor: { type: 'service', id: 'llm-router' }, data });

describe('metering: usage events settle their holds', () => {
  it('settles as the publishing service, with the usage line fields', async () => {
    const settle = jest.fn().mockResolvedValue({ status: 'settled' });
    const e = event({ requestId: 'r1', actualMicros: '12', model: 'm', usage: [{ kind: 'input_tokens', quantity: 3 }] });
    await handleUsageRecorded({ settle }, e);
    expect(settle).toHaveBeenLastCalledWith('llm-router', {
      tenantId: 'acme',
      requestId: 'r1',
      actualMicros: '12',
      model: 'm',
      usage: [{ kind: 'input_tokens', quantity: 3 }],
      revision: 0,
      occurredAt: new Date(e.occurredAt),
      agentId: null,
      teamId: null,
      userId: null,
    });
  });

  it('settles against the budget allotment the event names (a router served the request from it), as the settle request naming it does', async () => {
    const settle = jest.fn().mockResolvedValue({ status: 'settled' });
    await handleUsageRecorded({ settle }, event({ requestId: 'r1', agentId: 'bot', allotmentId: 'al-1', actualMicros: '12' }));
    expect(settle).toHaveBeenCalledWith('llm-router', expect.objectContaining({ requestId: 'r1', agentId: 'bot', allotmentId: 'al-1' }));
    await handleUsageRecorded({ settle }, event({ requestId: 'r2', agentId: 'bot', actualMicros: '12' }));
    expect(settle.mock.calls[1][1]).not.toHaveProperty('allotmentId');
    await expect(handleUsageRecorded({ settle }, event({ requestId: 'r3', agentId: 'bot', allotmentId: 'not an id', actualMicros: '1' }))).rejects.toMatchObject({ code: 'validation' });
  });
  it('passes the usage time, the agent, its team and user, and the revision of a late or corrected usage (the contract\'s optional fields)', async () => {
    const settle = jest.fn().mockResolvedValue({ status: 'settled' });
    await handleUsageRecorded({ settle }, event({ requestId: 'r2', agentId: 'bot', teamId: 'ops', userId: 'alice', actualMicros: '7', occurredAt: '2026-11-30T23:59:00+08:00', revision: 2 }));
    expect(settle).toHaveBeenCalledWith('llm-router', expect.objectContaining({ agentId: 'bot', teamId: 'ops', userId: 'alice', revision: 2, occurredAt: new Date('2026-11-30T15:59:00.000Z') }));
    await expect(handleUsageRecorded({ settle }, event({ requestId: 'r', actualMicros: '1', revision: -1 }))).rejects.toMatchObject({ code: 'validation' });
    await expect(handleUsageRecorded({ settle }, event({ requestId: 'r', actualMicros: '1', occurredAt: 'yesterday' }))).rejects.toMatchObject({ code: 'validation' });
  });
  it('acknowledges what the ledger refuses for good (no hold, released); retries anything else; malformed data fails (dead-lettered after its retries)', async () => {
    for (const code of ['not_found', 'illegal_state', 'forbidden'] as const) {
      await expect(handleUsageRecorded({ settle: jest.fn().mockRejectedValue(new PalisadeError(code, 'x')) }, event({ requestId: 'r', actualMicros: '1' }))).resolves.toBeUndefined();
    }
    await expect(handleUsageRecorded({ settle: jest.fn().mockRejectedValue(new Error('db down')) }, event({ requestId: 'r', actualMicros: '1' }))).rejects.toThrow('db down');
    await expect(handleUsageRecorded({ settle: jest.fn() }, event({ requestId: 'r', actualMicros: '1.5' }))).rejects.toMatchObject({ code: 'validation' });
  });
});
