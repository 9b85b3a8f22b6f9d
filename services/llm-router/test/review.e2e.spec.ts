import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { audienceOf } from '@palisade/auth-verifier';
import { type CallOptions, eventually, httpsCaller, infra, startSealPersonalStandIn, TestTokenIssuer } from '@palisade/testing';
import { startStandIn, type StandIn } from './support/provider-standin';
import { withRouterDb } from './support/router-db';

// The output review hook of the built llm-router (offset 9960) with the built policy and
// billing services: the tenant reviews get_weather; an answer calling it is held (409
// review_required in OpenAI's shape, through the official SDK); the agent asks the policy
// service for the approval it was given; the user it acts for may not approve it, another
// person does; the router redeems the token with its own decision and releases the
// answer exactly once, to that agent only (another agent or tenant: 404); a token of
// another held answer is refused (403); a stream offering get_weather is refused up front;
// a held answer nobody releases expires (event, then 404). Events carry no text.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9960;
const ROUTER = 7106 + OFFSET;
const POLICY = 7102 + OFFSET;
const BILLING = 7107 + OFFSET;
const TTL_MS = 25_000;
const tenant = `rv-${randomBytes(4).toString('hex')}`;
const other = `rw-${randomBytes(4).toString('hex')}`;
const CITY = 'Zürich-Altstetten';

type Review = { heldId: string; expiresAt: string; releaseKey: string; approval: { action: string; resource: { type: string; id: string }; parameters: { tools: string[]; callsSha256: string }; service: string } };

/** The tenant's events of a type, oldest first. */
function events(type: string): Promise<Array<{ data: Record<string, unknown>; personal?: unknown }>> {
  return withRouterDb(async (c) => {
    const r = await c.query(`SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = $2 ORDER BY global_position`, [tenant, type]);
    return r.rows.map((row: { envelope: { data: Record<string, unknown>; personal?: unknown } }) => row.envelope);
  });
}

/** The held answer's row as stored (sealed). */
function storedRow(heldId: string): Promise<string | undefined> {
  return withRouterDb(async (c) => (await c.query(`SELECT body::text AS body FROM palisade.held_answers WHERE tenant_id = $1 AND held_id = $2`, [tenant, heldId])).rows[0]?.body as string | undefined);
}

describe('llm-router output review (built router, policy and billing services, OpenAI SDK)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  /** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
  let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
  let onprem: StandIn;
  const t: Record<string, string> = {};
  let users: TestTokenIssuer;
  let people: TestTokenIssuer;
  const router = (path: string, token: string, options: CallOptions = {}) => httpsCaller(ROUTER)(path, { token, ...options });
  const policy = (path: string, token: string, options: CallOptions = {}) => httpsCaller(POLICY)(path, { token, ...options });
  const weather = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  // another run's policy instance on the shared NATS may take the router's decision request (queue group): it does not
  // know our test issuer's keys and denies with agent-unverified, spending nothing; asked again, ours answers
  const release = (held: Review, token: string, approvalToken?: string) =>
    eventually(async () => {
      const reply = await router(`/v1/router/held/${held.heldId}/release`, token, { method: 'POST', body: approvalToken ? { approvalToken, releaseKey: held.releaseKey } : {} });
      return reply.status === 403 && String(reply.json.error?.message).includes('agent-unverified') ? undefined : reply;
    }, 10000);

  /** A call whose answer calls get_weather: held. The policy service may need a moment to see its rules (until then get_weather is removed, nothing held), so each try has a new token. */
  async function held(): Promise<Review> {
    return eventually(async () => {
      const bot = await users.token({ sub: 'pay-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
      const client = new OpenAI({ apiKey: bot, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
      const error = await client.chat.completions.create({ model: 'weather', tools: weather, messages: [{ role: 'user', content: CITY }] }).then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
      if (error?.status !== 409) return undefined;
      expect(error.type).toBe('review_required');
      expect(error.code).toBe('review_required');
      expect(error.message).toContain('get_weather');
      expect(JSON.stringify(error.error)).not.toContain(CITY);
      return (error.error as { review: Review }).review;
    }, 15000);
  }

  /** The agent asks the policy service for the approval the router named; carla (not alice) approves: the one-time token. */
  async function approved(review: Review): Promise<string> {
    const asked = await policy('/v1/approvals', t.botAtPolicy, { method: 'POST', body: review.approval });
    expect(asked.status).toBeLessThan(300);
    const approval = await policy(`/v1/approvals/${asked.json.approvalId}/approve`, t.carla, { method: 'POST' });
    expect(approval.status).toBe(200);
    return approval.json.token as string;
  }

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    onprem = await startStandIn();
    users = await TestTokenIssuer.create(audienceOf('llm-router'));
    people = await TestTokenIssuer.create(audienceOf('policy'));
    const billers = await TestTokenIssuer.create(audienceOf('billing'));
    const jwks = JSON.stringify({ keys: [users, people, billers].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    sealing = await startSealPersonalStandIn();
    handles = runner.startServices({
      services: ['policy', 'billing', 'llm-router'],
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'llm-router-review-e2e'),
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', LLM_ROUTER_HELD_ANSWER_TTL_MS: String(TTL_MS), LLM_ROUTER_HELD_SWEEP_MS: '500' },
    });
    t.admin = await users.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['llm-router:admin'] });
    t.bot = await users.token({ sub: 'pay-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.otherBot = await users.token({ sub: 'other-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.rivalBot = await users.token({ sub: 'pay-bot', tid: other, ptp: 'agent', act: { sub: 'alice' } });
    t.botAtPolicy = await people.token({ sub: 'pay-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.alice = await people.token({ sub: 'alice', tid: tenant, ptp: 'user' });
    t.carla = await people.token({ sub: 'carla', tid: tenant, ptp: 'user' });
    const policyAdmin = await people.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
    const billingAdmin = await billers.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['billing:admin'] });
    await runner.waitReady(handles, { timeoutMs: 120000 });
    const setPolicy = async (path: string, method: string, body: object) => expect((await policy(path, policyAdmin, { method, body })).status).toBeLessThan(300);
    // pay-bot and alice may invoke get_weather and ask for releases; alice and carla may approve releases; a release is critical
    await setPolicy('/v1/roles/caller', 'PUT', { inherits: [] });
    await setPolicy('/v1/roles/reviewer', 'PUT', { inherits: [] });
    await setPolicy('/v1/assignments', 'POST', {
      assignments: [
        ...['user:alice', 'agent:pay-bot', 'agent:other-bot'].map((subject) => ({ subject, role: 'caller' })),
        ...['user:alice', 'user:carla'].map((subject) => ({ subject, role: 'reviewer' })),
      ],
    });
    await setPolicy('/v1/policies/review', 'PUT', {
      rules: [
        { id: 'callers-invoke', effect: 'allow', subject: 'role:caller', resource: 'tool', action: 'invoke' },
        { id: 'callers-release', effect: 'allow', subject: 'role:caller', resource: 'llm-answer', action: 'llm.release' },
        { id: 'reviewers-approve', effect: 'allow', subject: 'role:reviewer', resource: 'approval', action: 'approve' },
      ],
    });
    await setPolicy('/v1/tools', 'PUT', { tools: ['get_weather'] });
    await setPolicy('/v1/agents/pay-bot/tools', 'PUT', { tools: ['get_weather'] });
    await setPolicy('/v1/critical-actions', 'PUT', { actions: ['llm.release'] });
    expect((await httpsCaller(BILLING)(`/v1/budgets/tenant/${tenant}`, { token: billingAdmin, method: 'PUT', body: { limitMicros: '1000000000', period: 'month' } })).status).toBe(200);
    const put = async (path: string, body: object) => expect((await router(path, t.admin, { method: 'PUT', body })).status).toBe(200);
    await put('/v1/router/providers/onprem', { kind: 'openai', baseUrl: `${onprem.url}/v1`, compliance: 'private' });
    await put('/v1/router/models/weather', { providerId: 'onprem', upstreamModel: 'call-tool', contextWindow: 128000, maxOutputTokens: 2048, inputMicrosPerMTok: 100000, outputMicrosPerMTok: 200000 });
    const bad = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { review: { tools: ['get weather'] } } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('review.tools');
    const set = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { review: { tools: ['get_weather'] } } });
    expect(set.json).toMatchObject({ review: { tools: ['get_weather'] } });
  }, 180000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await sealing?.stop();
    await onprem?.close();
  });

  let forgotten: Review;

  it('an answer calling a reviewed tool is held; released once a second person approved, exactly once, to that agent only', async () => {
    forgotten = await held(); // nobody releases this one: it expires (last test)
    const review = await held();
    expect(review.releaseKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(review.approval).toEqual({ action: 'llm.release', resource: { type: 'llm-answer', id: review.heldId }, parameters: { tools: ['get_weather'], callsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, service: 'llm-router' });
    // still waiting: 409 with what to ask for
    const waiting = await release(review, t.bot);
    expect(waiting.status).toBe(409);
    // the agent asks; alice, whom it acts for, may not approve (four eyes across acting-for), even as a reviewer
    const asked = await policy('/v1/approvals', t.botAtPolicy, { method: 'POST', body: review.approval });
    expect(asked.status).toBeLessThan(300);
    const byAlice = await policy(`/v1/approvals/${asked.json.approvalId}/approve`, t.alice, { method: 'POST' });
    expect(byAlice.status).toBe(403);
    expect(byAlice.json.error.message).toBe('the user an agent acts for may not approve or reject its request');
    const byCarla = await policy(`/v1/approvals/${asked.json.approvalId}/approve`, t.carla, { method: 'POST' });
    expect(byCarla.status).toBe(200);
    const token = byCarla.json.token as string;
    // another agent of the tenant, and the same agent name in another tenant: not found, the approval not spent
    expect((await release(review, t.otherBot, token)).status).toBe(404);
    expect((await release(review, t.rivalBot, token)).status).toBe(404);
    const answer = await release(review, t.bot, token);
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ object: 'chat.completion', model: 'weather', choices: [{ finish_reason: 'tool_calls', message: { tool_calls: [{ function: { name: 'get_weather', arguments: JSON.stringify({ city: CITY }) } }] } }] });
    const again = await release(review, t.bot, token);
    expect(again.status).toBe(404);
    expect(again.json.error.message).toBe('the held answer was released already');
    const status = await policy(`/v1/approvals/${asked.json.approvalId}`, t.carla);
    expect(status.json.status).toBe('consumed');
    const heldEvents = await eventually(async () => {
      const [h, r] = [await events('llm-router.answer.held'), await events('llm-router.answer.released')];
      return r.length >= 1 ? { h, r } : undefined;
    }, 5000);
    expect(heldEvents.r[0].data).toEqual({ heldId: review.heldId, approvalId: asked.json.approvalId });
    expect(heldEvents.h.find((e) => e.data.heldId === review.heldId)?.data).toMatchObject({ owner: { type: 'agent', id: 'pay-bot', actingFor: 'alice' }, tools: ['get_weather'] });
    expect(JSON.stringify([...heldEvents.h, ...heldEvents.r])).not.toContain('Altstetten');
    // the call was settled and audited as held (the answer's text only in personal, sealed by audit before it was stored)
    const calls = await events('llm-router.model-call.recorded');
    expect(calls.some((c) => c.data.reason === 'review:held' && (c.data.guards as { review?: { held: boolean } }).review?.held === true)).toBe(true);
    expect(JSON.stringify(calls)).not.toContain('Altstetten');
  });

  it("a token of another held answer is refused (403) and that answer stays held; a stream offering the reviewed tool is refused up front", async () => {
    const first = await held();
    const second = await held();
    const token = await approved(first);
    // at rest the answer is sealed under the key only the caller got
    const stored = await storedRow(second.heldId);
    expect(stored).toContain('"tag"');
    expect(stored).not.toContain('Altstetten');
    expect(stored).not.toContain('get_weather');
    const wrong = await release(second, t.bot, token);
    expect(wrong.status).toBe(403);
    expect(wrong.json.error.message).toContain('another action or other parameters');
    expect((await release(first, t.bot, token)).status).toBe(200);
    expect((await release(second, t.bot)).status).toBe(409);
    // (as in held(): until the policy service lets pay-bot use get_weather, the tool is removed and the stream has nothing to review)
    const streamed = await eventually(async () => {
      onprem.records.length = 0;
      const bot = await users.token({ sub: 'pay-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
      const client = new OpenAI({ apiKey: bot, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'weather', tools: weather, stream: true, messages: [{ role: 'user', content: 'x' }] }).then(
        async (s) => {
          for await (const _ of s) void _;
          return undefined;
        },
        (e: unknown) => e as { status: number; message: string },
      );
      return stream?.status === 400 ? stream : undefined;
    }, 15000);
    expect(streamed?.message).toContain('review.tools');
    expect(onprem.records).toEqual([]);
  });

  it('the Anthropic API: held in its error shape (the SDK raises a conflict), released as an Anthropic message', async () => {
    const review = await eventually(async () => {
      const bot = await users.token({ sub: 'pay-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
      const client = new Anthropic({ authToken: bot, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 });
      const error = await client.messages
        .create({ model: 'weather', max_tokens: 100, tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }], messages: [{ role: 'user', content: CITY }] })
        .then(
          () => undefined,
          (e: unknown) => e as InstanceType<typeof Anthropic.APIError>,
        );
      if (error?.status !== 409) return undefined;
      expect(error).toBeInstanceOf(Anthropic.ConflictError);
      const body = error.error as { type: string; error: { type: string; review: Review } };
      expect(body.type).toBe('error');
      expect(body.error.type).toBe('review_required');
      return body.error.review;
    }, 15000);
    const token = await approved(review);
    const answer = await release(review, t.bot, token);
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'tool_use', content: expect.arrayContaining([{ type: 'tool_use', id: expect.any(String), name: 'get_weather', input: { city: CITY } }]) });
  });

  it('a held answer nobody releases expires: an event, then 404', async () => {
    const expired = await eventually(async () => (await events('llm-router.answer.expired')).find((e) => e.data.heldId === forgotten.heldId), TTL_MS + 20000, 500);
    expect(expired.data).toEqual({ heldId: forgotten.heldId });
    const gone = await release(forgotten, t.bot, 'x');
    expect(gone.status).toBe(404);
    expect(gone.json.error.message).toBe('the held answer has expired');
  }, TTL_MS + 30000);
});
