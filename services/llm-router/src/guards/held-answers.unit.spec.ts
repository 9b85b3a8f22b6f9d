import { systemEventContext, type Principal } from '@palisade/contracts';
import { DeciderSpecification, InMemoryEventStore } from '@palisade/eventsourcing';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import type { CatalogState } from '../catalog/catalog.decider';
import { CompletionsService } from '../completions/completions.service';
import type { ModelCallRecorded } from '../model-calls/model-calls.events';
import { GuardPipeline } from './guard-pipeline';
import { guardPolicySchema } from './guard-policy.dto';
import { DEFAULT_GUARD_POLICY, type GuardPolicy } from './guard-policy.events';
import { heldAnswerDecider, type HeldAnswerCommand } from './held-answers.decider';
import type { AnswerHeld, HeldAnswerEvent } from './held-answers.events';
import { HeldAnswersService, type SealedAnswer } from './held-answers.service';
import { PiiDetector } from './pii.detector';
import { refuseStreamedReview, reviewedCalls } from './review';

// Output review: the held answer's decider (given events, when a command, then events or
// an error), which calls of an answer are reviewed, the service around the decider (an
// in-memory store, a fake table and a fake policy service), and the call path.

const spec = DeciderSpecification.for(heldAnswerDecider);
const T0 = new Date('2026-12-03T10:00:00.000Z');
const at = (now: Date) => ({ tenantId: 'acme', actor: { type: 'agent' as const, id: 'bot' }, now });
const cmd = (c: Omit<HeldAnswerCommand, 'metadata'>, now = T0) => ({ ...c, metadata: at(now) }) as HeldAnswerCommand;
const HELD_ID = '0193a1b2-0000-7000-8000-000000000001';
const heldData: AnswerHeld['data'] = { heldId: HELD_ID, requestId: 'r-1', api: 'openai', owner: { type: 'agent', id: 'bot', actingFor: 'alice' }, tools: ['wire_money'], callsSha256: 'ab'.repeat(32), expiresAt: '2026-12-03T11:00:00.000Z' };
const held: HeldAnswerEvent = { type: 'llm-router.answer.held', data: heldData };
const released: HeldAnswerEvent = { type: 'llm-router.answer.released', data: { heldId: HELD_ID, approvalId: 'ap-1' } };
const bot = { type: 'agent', id: 'bot' };

describe('held answer decider', () => {
  it('holds once, for an hour, with the caller, the tools and the hash of the calls (no text)', () => {
    const { expiresAt: _e, ...data } = heldData;
    void _e;
    spec([]).when(cmd({ type: 'hold', data: { ...data, ttlMs: 3_600_000 } })).then([held]);
    spec([held]).when(cmd({ type: 'hold', data: { ...data, ttlMs: 3_600_000 } })).thenThrows('conflict', 'held already');
    spec([]).when(cmd({ type: 'hold', data: { ...data, tools: [], ttlMs: 1 } })).thenThrows('validation', 'tools');
  });

  it('releases once, to the caller that asked only, before it expires', () => {
    spec([held]).when(cmd({ type: 'release', data: { caller: bot, approvalId: 'ap-1' } })).then([released]);
    spec([held, released]).when(cmd({ type: 'release', data: { caller: bot, approvalId: 'ap-1' } })).thenThrows('not_found', 'released already');
    spec([held]).when(cmd({ type: 'release', data: { caller: { type: 'agent', id: 'other-bot' }, approvalId: 'ap-1' } })).thenThrows('not_found', 'held answer not found');
    spec([held]).when(cmd({ type: 'release', data: { caller: { type: 'user', id: 'alice' }, approvalId: 'ap-1' } })).thenThrows('not_found', 'held answer not found');
    spec([]).when(cmd({ type: 'release', data: { caller: bot, approvalId: 'ap-1' } })).thenThrows('not_found', 'held answer not found');
    spec([held]).when(cmd({ type: 'release', data: { caller: bot, approvalId: 'ap-1' } }, new Date('2026-12-03T11:00:00.000Z'))).thenThrows('not_found', 'expired');
  });

  it('expires at its time, once; not before, not after a release', () => {
    const late = new Date('2026-12-03T11:00:00.001Z');
    const expired: HeldAnswerEvent = { type: 'llm-router.answer.expired', data: { heldId: HELD_ID } };
    spec([held]).when(cmd({ type: 'expire', data: {} }, late)).then([expired]);
    spec([held]).when(cmd({ type: 'expire', data: {} })).then([]);
    spec([held, expired]).when(cmd({ type: 'expire', data: {} }, late)).then([]);
    spec([held, released]).when(cmd({ type: 'expire', data: {} }, late)).then([]);
    spec([held, expired]).when(cmd({ type: 'release', data: { caller: bot, approvalId: 'ap-1' } }, late)).thenThrows('not_found', 'expired');
  });
});

const review: GuardPolicy = { ...DEFAULT_GUARD_POLICY, review: { tools: ['wire_money'] } };
const openAiAnswer = (calls: Array<[string, string]>) => ({ choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls.map(([name, args], i) => ({ id: `c${i}`, type: 'function', function: { name, arguments: args } })) }, finish_reason: 'tool_calls' }] });

describe('reviewed calls', () => {
  it('finds calls of reviewed tools in OpenAI and Anthropic answers, hashing names and arguments', () => {
    const one = reviewedCalls(review, 'openai', openAiAnswer([['search', '{}'], ['wire_money', '{"to":"DE89"}']]));
    expect(one).toEqual({ tools: ['wire_money'], callsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(reviewedCalls(review, 'openai', openAiAnswer([['wire_money', '{"to":"FR76"}']]))!.callsSha256).not.toBe(one!.callsSha256);
    expect(JSON.stringify(one)).not.toContain('DE89');
    const anthropic = reviewedCalls(review, 'anthropic', { content: [{ type: 'text', text: 'paying' }, { type: 'tool_use', id: 't', name: 'wire_money', input: { to: 'DE89' } }] });
    expect(anthropic?.tools).toEqual(['wire_money']);
  });

  it('nothing to review: no rule, no call, or calls of other tools only', () => {
    expect(reviewedCalls(DEFAULT_GUARD_POLICY, 'openai', openAiAnswer([['wire_money', '{}']]))).toBeUndefined();
    expect(reviewedCalls(review, 'openai', openAiAnswer([['search', '{}']]))).toBeUndefined();
    expect(reviewedCalls(review, 'openai', { choices: [{ index: 0, message: { role: 'assistant', content: 'hello' } }] })).toBeUndefined();
    expect(reviewedCalls(review, 'anthropic', { content: [{ type: 'text', text: 'wire_money' }] })).toBeUndefined();
  });

  it('a stream offering a reviewed tool is refused (400 naming the tool and the rule); other streams and JSON calls pass', () => {
    const tools = [{ type: 'function', function: { name: 'wire_money' } }];
    expect(() => refuseStreamedReview(review, 'openai', { stream: true, tools })).toThrow(expect.objectContaining({ code: 'validation', message: expect.stringContaining('wire_money is under review') }));
    expect(() => refuseStreamedReview(review, 'anthropic', { stream: true, tools: [{ name: 'wire_money' }] })).toThrow(expect.objectContaining({ details: { guard: 'review' } }));
    expect(() => refuseStreamedReview(review, 'openai', { tools })).not.toThrow();
    expect(() => refuseStreamedReview(review, 'openai', { stream: true, tools: [{ type: 'function', function: { name: 'search' } }] })).not.toThrow();
    expect(() => refuseStreamedReview(DEFAULT_GUARD_POLICY, 'openai', { stream: true, tools })).not.toThrow();
  });

  it('the guard policy takes review.tools (sorted, once each; absent when empty) and refuses bad names by field', () => {
    expect(guardPolicySchema.parse({ review: { tools: ['wire_money', 'sign', 'wire_money'] } }).review).toEqual({ tools: ['sign', 'wire_money'] });
    expect(guardPolicySchema.parse({ review: { tools: [] } })).toEqual({ pii: {}, injection: 'flag', toolCalls: 'remove' });
    expect(guardPolicySchema.safeParse({ review: { tools: ['bad name'] } }).error?.issues[0].path).toEqual(['review', 'tools', 0]);
    expect(guardPolicySchema.safeParse({ review: { tool: ['x'] } }).success).toBe(false);
  });
});

const agent: Principal = { type: 'agent', id: 'bot', tenantId: 'acme', actingFor: 'alice' };
const TOKEN = `${'0193a1b2-0000-7000-8000-0000000000aa'}.${'x'.repeat(43)}`;

function heldService(decide: (r: AuthorizeRequest) => AuthorizeDecision) {
  const rows = new Map<string, unknown>();
  const asked: AuthorizeRequest[] = [];
  let now = T0;
  const store = new InMemoryEventStore();
  const service = new HeldAnswersService({
    store,
    eventContext: systemEventContext('llm-router'),
    repo: {
      insert: async (_tx, row) => void rows.set(`${row.tenantId}/${row.heldId}`, row.body),
      peek: async (tenantId, heldId) => rows.get(`${tenantId}/${heldId}`) as SealedAnswer | undefined,
      take: async (_tx, tenantId, heldId) => {
        const body = rows.get(`${tenantId}/${heldId}`) as SealedAnswer | undefined;
        rows.delete(`${tenantId}/${heldId}`);
        return body;
      },
      expired: async () => [...rows.keys()].map((k) => ({ tenantId: k.split('/')[0], heldId: k.split('/')[1] })),
    },
    policy: () => ({ authorize: async (r: AuthorizeRequest) => (asked.push(r), decide(r)) }),
    ttlMs: 60_000,
    now: () => now,
    newId: () => HELD_ID,
  });
  return { service, rows, asked, store, later: (ms: number) => (now = new Date(T0.getTime() + ms)) };
}
const approved: AuthorizeDecision = { decision: 'allow', rule: 'approval', reason: 'critical action approved; the approval is now used' };
const body = { id: 'c', choices: [{ index: 0, message: { role: 'assistant', content: 'paying Zürich', tool_calls: [] } }] };
const KEY = expect.stringMatching(/^[A-Za-z0-9_-]{43}$/);
const calls = { tools: ['wire_money'], callsSha256: 'cd'.repeat(32) };

describe('held answers service', () => {
  it('releases to the caller once the policy service redeemed the approval, exactly once; the text is deleted', async () => {
    let redeemed = 0;
    const h = heldService(() => (redeemed++ === 0 ? approved : { decision: 'deny', rule: 'approval', reason: 'approval token already used' }));
    const { releaseKey, ...receipt } = await h.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
    expect({ releaseKey, ...receipt }).toEqual({ heldId: HELD_ID, expiresAt: '2026-12-03T10:01:00.000Z', approval: { action: 'llm.release', resource: { type: 'llm-answer', id: HELD_ID }, parameters: calls, service: 'llm-router' }, releaseKey: KEY });
    // at rest the answer is sealed under the caller's key
    expect(JSON.stringify([...h.rows.values()])).not.toContain('Zürich');
    // without a token: still waiting (409, no key: the router has none), nothing asked
    await expect(h.service.release(agent, 'agent-token', HELD_ID, undefined)).rejects.toMatchObject({ code: 'conflict', details: { review: receipt } });
    // a wrong key: refused before the approval is spent
    await expect(h.service.release(agent, 'agent-token', HELD_ID, TOKEN, 'A'.repeat(43))).rejects.toMatchObject({ code: 'forbidden', message: 'releaseKey: not the key of this held answer' });
    await expect(h.service.release(agent, 'agent-token', HELD_ID, TOKEN)).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/^releaseKey:/) });
    expect(h.asked).toEqual([]);
    await expect(h.service.release(agent, 'agent-token', HELD_ID, TOKEN, releaseKey)).resolves.toEqual({ api: 'openai', body });
    expect(h.asked[0]).toEqual({ tenantId: 'acme', subject: { type: 'agent', id: 'bot', token: 'agent-token' }, action: 'llm.release', resource: { type: 'llm-answer', id: HELD_ID }, parameters: calls, approvalToken: TOKEN });
    expect(h.rows.size).toBe(0);
    await expect(h.service.release(agent, 'agent-token', HELD_ID, TOKEN, releaseKey)).rejects.toMatchObject({ code: 'not_found', message: 'the held answer was released already' });
    expect(h.asked).toHaveLength(1);
  });

  it('another caller of the tenant, or another tenant, finds nothing (404) and asks nothing', async () => {
    const h = heldService(() => approved);
    await h.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
    await expect(h.service.release({ ...agent, id: 'other-bot' }, 't', HELD_ID, TOKEN)).rejects.toMatchObject({ code: 'not_found', message: 'held answer not found' });
    await expect(h.service.release({ type: 'user', id: 'alice', tenantId: 'acme' }, 't', HELD_ID, TOKEN)).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.service.release({ ...agent, tenantId: 'rival' }, 't', HELD_ID, TOKEN)).rejects.toMatchObject({ code: 'not_found' });
    expect(h.asked).toEqual([]);
    expect(h.rows.size).toBe(1);
  });

  it('a denial, a plain allow (llm.release not critical: nobody reviewed) and an undecided policy service keep it held', async () => {
    for (const [decision, code] of [
      [{ decision: 'deny', rule: 'approval', reason: 'approval token is bound to another action or other parameters' }, 'forbidden'],
      [{ decision: 'allow', rule: 'callers-release', reason: 'allowed' }, 'forbidden'],
      [{ decision: 'deny', rule: 'decision-failed', reason: 'the decision could not be made' }, 'unavailable'],
    ] as const) {
      const h = heldService(() => decision);
      const { releaseKey } = await h.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
      await expect(h.service.release(agent, 't', HELD_ID, TOKEN, releaseKey)).rejects.toMatchObject({ code });
      expect(h.rows.size).toBe(1);
    }
    const h = heldService(() => approved);
    await h.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
    await expect(h.service.release(agent, 't', HELD_ID, 'not-a-token')).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/^approvalToken:/) });
  });

  it('past its time it is gone: expired once (event), the text deleted, by a release attempt or the sweeper', async () => {
    const h = heldService(() => approved);
    await h.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
    h.later(60_000);
    await expect(h.service.release(agent, 't', HELD_ID, TOKEN)).rejects.toMatchObject({ code: 'not_found', message: 'the held answer has expired' });
    expect(h.rows.size).toBe(0);
    expect(h.asked).toEqual([]);
    const swept = heldService(() => approved);
    await swept.service.hold(agent, { requestId: 'r-1', api: 'openai', body, calls });
    expect(await swept.service.sweep()).toBe(1);
    expect(swept.rows.size).toBe(1); // not yet due: the sweeper's query picks only due rows; the decider expires nothing early
    swept.later(61_000);
    await swept.service.sweep();
    expect(swept.rows.size).toBe(0);
    const events = await swept.store.inTransaction((tx) => swept.store.readStream(tx, `llm-held-acme.${HELD_ID}`));
    expect(events.events.map((e) => e.event.type)).toEqual(['llm-router.answer.held', 'llm-router.answer.expired']);
    expect(JSON.stringify(events.events)).not.toContain('tool_calls');
  });
});

describe('output review in the call path', () => {
  const catalog: CatalogState = {
    providers: { onprem: { providerId: 'onprem', kind: 'openai', baseUrl: 'http://onprem.test/v1', compliance: 'private' } },
    models: { local: { modelId: 'local', providerId: 'onprem', upstreamModel: 'llama', contextWindow: 128_000, maxOutputTokens: 2048, inputMicrosPerMTok: 1_000_000, outputMicrosPerMTok: 2_000_000 } },
    routes: {},
  };
  const answer = JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'llama', ...openAiAnswer([['wire_money', '{"to":"x"}']]), usage: { prompt_tokens: 10, completion_tokens: 5 } });
  function setup(zeroRetention = false) {
    const s = { sent: 0, settled: 0, audited: [] as Array<{ call: ModelCallRecorded; texts: unknown }>, held: [] as unknown[] };
    const service = new CompletionsService({
      catalog: { current: async () => ({ ...catalog, ...(zeroRetention ? { settings: { zeroRetention: true } } : {}) }) as CatalogState },
      billing: { reserve: async () => ({ status: 'held' as const }), settle: async () => void s.settled++, release: async () => undefined },
      upstream: {
        send: async () => {
          s.sent++;
          const r = new Response(answer);
          return { status: 200, text: () => r.text(), body: r.body as unknown as AsyncIterable<Uint8Array>, cancel: () => undefined };
        },
      },
      detector: new PiiDetector(),
      guards: new GuardPipeline({ detector: new PiiDetector(), piiDeadlineMs: 1000, policies: { current: async () => review }, tools: { allowed: async (_p, _t, tools) => new Set(tools) } }),
      audit: { record: async (_p, call, texts) => void s.audited.push({ call, texts }), recordUsage: async () => undefined },
      review: { hold: async (_p, input) => (s.held.push(input), { heldId: HELD_ID, expiresAt: 'later', approval: { action: 'llm.release', resource: { type: 'llm-answer', id: HELD_ID }, parameters: input.calls, service: 'llm-router' } }) },
      keys: { keyFor: async () => undefined, forget: () => undefined },
      settings: { piiDeadlineMs: 1000, requestDeadlineMs: 10_000, defaultMaxTokens: 100, defaultClassification: 'internal' },
      logger: { warn: () => undefined },
    });
    const tools = [{ type: 'function', function: { name: 'wire_money' } }];
    const call = (extra: object = {}) => service.call({ api: 'openai', principal: agent, token: 't', body: { model: 'local', tools, messages: [{ role: 'user', content: 'pay' }], ...extra }, signal: new AbortController().signal });
    return { s, call };
  }
  const tick = () => new Promise((r) => setTimeout(r, 0));

  it('an answer calling a reviewed tool is held (409 review_required with the held id), settled, audited as held', async () => {
    const { s, call } = setup();
    await expect(call()).rejects.toMatchObject({ code: 'conflict', details: { review: { heldId: HELD_ID, approval: { action: 'llm.release' } } } });
    await tick();
    expect(s.held).toHaveLength(1);
    expect((s.held[0] as { body: { choices: Array<{ message: { tool_calls: unknown[] } }> } }).body.choices[0].message.tool_calls).toHaveLength(1);
    expect(s.settled).toBe(1);
    expect(s.audited).toHaveLength(1);
    expect(s.audited[0].call).toMatchObject({ outcome: 'refused', reason: 'review:held', guards: { review: { tools: ['wire_money'], held: true } } });
  });

  it('under zero retention nothing is held: the answer is refused (403 naming the tool), still settled, no text audited', async () => {
    const { s, call } = setup(true);
    await expect(call()).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('wire_money'), details: { guard: 'review' } });
    await tick();
    expect(s.held).toEqual([]);
    expect(s.settled).toBe(1);
    expect(s.audited[0]).toMatchObject({ call: { outcome: 'refused', reason: 'guard:review', guards: { review: { held: false } } }, texts: undefined });
  });

  it('a stream offering a reviewed tool is refused before anything is sent or reserved', async () => {
    const { s, call } = setup();
    await expect(call({ stream: true })).rejects.toMatchObject({ code: 'validation', details: { guard: 'review' } });
    expect(s.sent).toBe(0);
  });
});
