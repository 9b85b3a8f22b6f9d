// Over 400 lines on purpose: this is the one call path of a model request, in the order
// it runs (classify and mask, plan the route, reserve the worst case, attempt providers
// with breakers, stream or answer with unmasking, settle, record). The rules it applies
// live elsewhere (routing.ts, cost.ts, pii.*, translate.ts, the per-API stream handling
// in stream-handlers.ts); splitting the sequence itself would hide the order that budgets-first and fail-closed
// depend on.
import { clip, newEventId, PalisadeError, type Principal } from '@palisade/contracts';
import { nextBackoffMs } from '@palisade/postgres';
import type { CatalogState } from '../catalog/catalog.decider';
import type { CatalogService } from '../catalog/catalog.service';
import type { BillingPort } from '../budgets/billing.port';
import { clampMaxTokens, costMicros, inputTokenBound, worstCaseMicros } from '../budgets/cost';
import type { RateLimiterPort, RateTicket } from '../budgets/rate-limits';
import { GuardPipeline, type GuardRun } from '../guards/guard-pipeline';
import type { PiiDetector } from '../guards/pii.detector';
import type { MaskingSession } from '../guards/pii.masker';
import { reviewRequired, type HeldAnswersService } from '../guards/held-answers.service';
import { reviewedCalls, type ReviewedCalls } from '../guards/review';
import type { ModelCallRecorded } from '../model-calls/model-calls.events';
import type { ModelCallsService } from '../model-calls/model-calls.service';
import { UpstreamFailure, UpstreamRejection, type Upstream, type UpstreamResponse } from '../providers/upstream';
import type { ProviderKeys } from '../providers/provider-keys';
import { attemptsOf, candidatesOf, capabilitiesOf, plan, type Candidate, type Classification } from './routing';
import { SseParser, sseOf, type SseEvent } from './sse';
import { AnthropicToOpenAiStream, OpenAiToAnthropicStream } from './stream-translate';
import { StreamUnmasker } from './stream-unmasker';
import { anthropicStreamHandler, anthropicUsage, openAiStreamHandler, openAiUsage, streamStateOf, type Usage } from './stream-handlers';
import { anthropicRequestToOpenAi, anthropicResponseToOpenAi, openAiRequestToAnthropic, openAiResponseToAnthropic } from './translate';

export type Api = 'openai' | 'anthropic';
type Json = Record<string, unknown>;


export interface CompletionsSettings {
  piiDeadlineMs: number;
  requestDeadlineMs: number;
  defaultMaxTokens: number;
  defaultClassification: Classification;
}

export interface CompletionsDependencies {
  catalog: Pick<CatalogService, 'current'>;
  billing: BillingPort;
  /** Requests and tokens per minute per agent and API key, shared by the instances; absent: none checked. */
  rateLimits?: RateLimiterPort;
  upstream: Pick<Upstream, 'send'>;
  detector: Pick<PiiDetector, 'detect'>;
  /** The guards (policy per tenant, injections, tool allowlists); absent: masking with the default policy only. */
  guards?: GuardPipeline;
  audit: Pick<ModelCallsService, 'record' | 'recordUsage'>;
  /** Output review: where answers calling reviewed tools are held; absent: such answers are refused (nothing can hold them). */
  review?: Pick<HeldAnswersService, 'hold'>;
  keys: Pick<ProviderKeys, 'keyFor' | 'forget'>;
  settings: CompletionsSettings;
  /** Logs carry ids, codes and counts only: never a prompt, a response or a detected value. */
  logger: { warn(obj: object, msg: string): void };
  now?: () => Date;
  newId?: () => string;
  sleep?: (ms: number) => Promise<void>;
}

export interface CallInput {
  api: Api;
  principal: Principal;
  /** The caller's body, validated by the controller (model, messages, max tokens, stream). */
  body: Json;
  declared?: Classification;
  /** The caller's access token as presented, for the policy service's tool decisions. */
  token?: string;
  /** Aborted when the caller goes away. */
  signal: AbortSignal;
}

/** `POST /v1/embeddings`: the caller's body (model, input as a string or strings), validated by the controller. */
export type EmbedInput = Omit<CallInput, 'api'>;

export type CallResult = { kind: 'json'; body: Json; requestId: string } | { kind: 'stream'; events: AsyncGenerator<string, void, undefined>; requestId: string };

/** What one call has learned so far: becomes its audit event. */
interface Trace {
  requestId: string;
  started: number;
  principal: Principal;
  api: Api;
  /** An embeddings request (OpenAI's `/v1/embeddings`, OpenAI-compatible providers only). */
  embeddings?: boolean;
  model: string;
  classification: Classification;
  streamed: boolean;
  attempts: number;
  reservedMicros: number;
  /** The budget allotment the reservation was served from (named in the usage event), if any. */
  allotmentId?: string;
  /** What the call was charged, once settled (an answer refused by a guard is settled before it is refused). */
  cost?: number;
  /** What the rate limits counted for this call (its unused tokens are given back). */
  ticket?: RateTicket;
  session?: MaskingSession;
  guarded?: GuardRun;
  /** The audit event is written once. */
  finished?: boolean;
  served?: Candidate;
  prompt: unknown;
  /** The tenant keeps no text anywhere: no `personal` in the audit event. */
  zeroRetention: boolean;
}

const DEFAULT_SLEEP = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Settle requests sent for a call whose usage event could not be written (backoff 0.1 s doubling: ~3 s in all). */
const SETTLE_ATTEMPTS_UNRECORDED = 6;

/** Why an answer is withheld when its audit or usage event cannot be committed (the store down). */
const UNRECORDED = 'the call could not be recorded (audit and usage events not committed): the answer is withheld';

/** An error event in the caller's stream protocol (after a 200 and its headers, the only way left to fail). */
function streamErrorOf(api: Api, code: 'stream_cut' | 'unavailable', message: string): string {
  return api === 'openai'
    ? sseOf({ data: JSON.stringify({ error: { message, type: 'server_error', param: null, code } }) })
    : sseOf({ event: 'error', data: JSON.stringify({ type: 'error', error: { type: code === 'unavailable' ? 'overloaded_error' : 'api_error', message } }) });
}

/**
 * One model call, in this order: mask (fail-closed) → classify (declared, raised by what
 * was found) → route (only permitted providers) → reserve the worst case with billing
 * (refused: 429, unreachable: 503) → at most three attempts through the providers'
 * breakers, never retried once a byte reached the caller → unmask → settle the real
 * usage → audit. Nothing is sent to a provider before the masking and the reservation
 * have both succeeded.
 */
export class CompletionsService {
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly guards: GuardPipeline;
  /** Settle requests under way (drain() waits for them on shutdown). */
  private readonly settling = new Set<Promise<void>>();

  constructor(private readonly d: CompletionsDependencies) {
    this.guards = d.guards ?? new GuardPipeline({ detector: { detect: (text) => this.d.detector.detect(text) }, piiDeadlineMs: d.settings.piiDeadlineMs });
    this.now = d.now ?? (() => new Date());
    this.newId = d.newId ?? newEventId;
    this.sleep = d.sleep ?? DEFAULT_SLEEP;
  }

  /** The model names a caller of this tenant may use (routes and models). */
  async models(principal: Principal): Promise<string[]> {
    requireCaller(principal);
    const catalog = await this.d.catalog.current(principal.tenantId);
    return [...Object.keys(catalog.routes), ...Object.keys(catalog.models)].sort();
  }

  async call(input: CallInput): Promise<CallResult> {
    const { principal, body, api } = input;
    requireCaller(principal);
    const t = this.traceOf(input, api, { streamed: body.stream === true, prompt: api === 'anthropic' ? { system: body.system, messages: body.messages } : { messages: body.messages } });
    try {
      // 1. guards: injections, PII masked per the tenant's policy (fail-closed), 2. classified, tools checked
      const { catalog, masked: maskedBody } = await this.guard(t, input, body);
      // 3. route
      const candidates = plan(catalog, t.model, (served) => t.guarded!.classOf(served), capabilitiesOf(maskedBody));
      // 4. reserve the worst case
      const requested = intOrUndefined(body.max_completion_tokens) ?? intOrUndefined(body.max_tokens);
      const models = candidates.map((c) => c.model);
      const maxTokens = clampMaxTokens(requested, this.d.settings.defaultMaxTokens, models);
      const inputBound = inputTokenBound(maskedBody);
      t.reservedMicros = worstCaseMicros(models, inputBound, maxTokens);
      // rate limits per agent and key (worst-case tokens), then the budget
      t.ticket = await this.d.rateLimits?.admit(principal, catalog.settings?.rateLimits, inputBound + maxTokens);
      await this.reserve(t);
      // 5. attempts
      return await this.attempt(t, input, maskedBody, candidates, maxTokens);
    } catch (error) {
      return this.failed(t, error);
    }
  }

  /**
   * Embeddings (OpenAI's shape), on the same path as a chat call: the inputs guarded and
   * masked like user messages (the class raised by what was found), routed only to
   * permitted OpenAI-compatible providers, the worst case (every input byte a token at the
   * highest input price) reserved first, at most three attempts, the real usage settled,
   * one audit event (the inputs in `personal`, never the vectors).
   */
  async embed(input: EmbedInput): Promise<{ body: Json; requestId: string }> {
    const { principal, body } = input;
    requireCaller(principal);
    const inputs = typeof body.input === 'string' ? [body.input] : (body.input as string[]);
    const t = this.traceOf(input, 'openai', { streamed: false, prompt: { input: body.input }, embeddings: true });
    try {
      const { catalog, masked: guarded } = await this.guard(t, input, { messages: inputs.map((content) => ({ role: 'user', content })) });
      const masked = (guarded.messages as Array<{ content: string }>).map((m) => m.content);
      const candidates = plan(catalog, t.model, (served) => t.guarded!.classOf(served)).filter((c) => c.provider.kind === 'openai');
      if (candidates.length === 0) throw new PalisadeError('validation', `model: no OpenAI-compatible provider of ${t.model} may serve these embeddings (Anthropic has no embeddings API)`);
      const inputBound = inputTokenBound({ messages: masked });
      t.reservedMicros = worstCaseMicros(
        candidates.map((c) => c.model),
        inputBound,
        0,
      );
      t.ticket = await this.d.rateLimits?.admit(principal, catalog.settings?.rateLimits, inputBound);
      await this.reserve(t);
      const result = await this.attempt(t, { ...input, api: 'openai' }, { ...body, input: typeof body.input === 'string' ? masked[0] : masked }, candidates, 0);
      return { body: (result as { body: Json }).body, requestId: result.requestId };
    } catch (error) {
      return this.failed(t, error);
    }
  }

  /**
   * A call that ended in an error before any answer: its rate-limit ticket given back, its
   * audit event written (committed before the caller hears), the error rethrown. The error
   * stays the call's own even when its event cannot be committed (logged): no answer is
   * given either way.
   */
  private async failed(t: Trace, error: unknown): Promise<never> {
    const reason = reasonOf(error);
    void t.ticket?.settle(0);
    await this.finish(t, { outcome: reason === 'providers-failed' || reason === 'internal' ? 'failed' : 'refused', reason }).catch(() => undefined);
    throw error;
  }

  private traceOf(input: EmbedInput, api: Api, how: Pick<Trace, 'streamed' | 'prompt' | 'embeddings'>): Trace {
    return {
      requestId: this.newId(),
      started: performance.now(),
      principal: input.principal,
      api,
      model: String(input.body.model),
      classification: input.declared ?? this.d.settings.defaultClassification,
      attempts: 0,
      reservedMicros: 0,
      zeroRetention: true,
      ...how,
    };
  }

  /** The tenant's catalog, and the body the guards let out (masked per the tenant's policy, fail-closed; the class raised by what was found). */
  private async guard(t: Trace, input: EmbedInput, body: Json): Promise<{ catalog: CatalogState; masked: Json }> {
    const catalog = await this.d.catalog.current(input.principal.tenantId);
    t.zeroRetention = catalog.settings?.zeroRetention === true;
    t.guarded = this.guards.start(t.classification);
    t.session = t.guarded.session;
    const masked = await this.guards.inbound(t.guarded, { api: t.api, principal: input.principal, model: t.model, candidates: candidatesOf(catalog, t.model), body, ...(input.token ? { token: input.token } : {}) });
    t.classification = t.guarded.classification;
    return { catalog, masked };
  }

  /** An embeddings answer: the caller's model name, the real usage settled; nothing to unmask (vectors), no text kept. */
  private async embedded(t: Trace, json: Json): Promise<Json> {
    const usage = openAiUsage(json.usage);
    await Promise.all([this.settle(t, usage, false), this.finish(t, { outcome: 'served', usage })]);
    return { ...json, model: t.model };
  }

  private async reserve(t: Trace): Promise<void> {
    const { principal } = t;
    const expiresAt = new Date(this.now().getTime() + this.d.settings.requestDeadlineMs).toISOString();
    const result = await this.d.billing.reserve({
      tenantId: principal.tenantId,
      requestId: t.requestId,
      ...(principal.type === 'agent' ? { agentId: principal.id, ...(principal.actingFor ? { userId: principal.actingFor } : {}) } : { agentId: `user:${principal.id}`, userId: principal.id }),
      ...((principal.department ?? principal.teams?.[0]) ? { teamId: principal.department ?? principal.teams![0] } : {}),
      model: t.model,
      amountMicros: t.reservedMicros,
      expiresAt,
    });
    if (result.status === 'held') t.allotmentId = result.allotmentId;
    if (result.status === 'refused') {
      const resets = result.resetsAt ? `, resets at ${result.resetsAt}` : '';
      throw new PalisadeError('rate_limited', `the ${result.level} budget has no room for this request (limit ${result.limitMicros} micro-USD${resets})`, {
        budget: { level: result.level, limitMicros: result.limitMicros, ...(result.resetsAt ? { resetsAt: result.resetsAt } : {}) },
      });
    }
  }

  private async attempt(t: Trace, input: CallInput, maskedBody: Json, candidates: Candidate[], maxTokens: number): Promise<CallResult> {
    const call = deadlineOf(input.signal, this.d.settings.requestDeadlineMs);
    let streaming = false;
    try {
      const result = await this.attempts(t, input, maskedBody, candidates, maxTokens, call);
      streaming = result.kind === 'stream';
      return result;
    } finally {
      // a stream ends its deadline itself, when it ends
      if (!streaming) call.end();
    }
  }

  private async attempts(t: Trace, input: CallInput, maskedBody: Json, candidates: Candidate[], maxTokens: number, call: Deadline): Promise<CallResult> {
    const deadline = call.signal;
    let lastFailure: UpstreamFailure | undefined;
    for (const candidate of attemptsOf(candidates)) {
      if (deadline.aborted) break;
      if (t.attempts > 0) await this.sleep(Math.min(lastFailure?.retryAfterMs ?? 100 * 2 ** (t.attempts - 1), 2000));
      t.attempts++;
      try {
        // the class its rules give (checked against its provider again), for the audit event
        t.classification = t.guarded!.serving(candidate);
        const apiKey = await this.d.keys.keyFor(t.principal.tenantId, candidate.provider);
        const upstreamBody = t.embeddings ? { ...maskedBody, model: candidate.model.upstreamModel } : upstreamBodyOf(input.api, candidate, maskedBody, maxTokens, t.streamed);
        const response = await this.d.upstream.send({ tenantId: t.principal.tenantId, provider: candidate.provider, upstreamModel: candidate.model.upstreamModel, body: upstreamBody, ...(apiKey ? { apiKey } : {}), ...(t.embeddings ? { path: '/embeddings' as const } : {}), signal: deadline });
        t.served = candidate;
        if (t.streamed) return { kind: 'stream', requestId: t.requestId, events: this.stream(t, input, response, call) };
        const text = await response.text();
        let json: Json;
        try {
          json = JSON.parse(text) as Json;
        } catch {
          throw new UpstreamFailure('status', response.status);
        }
        return { kind: 'json', requestId: t.requestId, body: t.embeddings ? await this.embedded(t, json) : await this.complete(t, input.api, candidate, json) };
      } catch (error) {
        if (error instanceof UpstreamRejection) {
          await this.release(t);
          if ((error.status === 401 || error.status === 403) && candidate.provider.apiKeySecretId) {
            // the provider refused the router's key (revoked or rotated at the provider): not the caller's error
            this.d.keys.forget(t.principal.tenantId, candidate.provider.apiKeySecretId);
            throw new PalisadeError('unavailable', `provider ${candidate.provider.providerId} refused the key the vault holds for it (${error.status})`);
          }
          throw new PalisadeError('validation', `the provider refused the request (${error.status})`);
        }
        if (!(error instanceof UpstreamFailure)) {
          await this.release(t);
          throw error;
        }
        lastFailure = error;
        this.d.logger.warn({ requestId: t.requestId, provider: candidate.provider.providerId, reason: error.reason, status: error.status }, 'provider attempt failed');
      }
    }
    await this.release(t);
    throw new PalisadeError('unavailable', `no permitted provider answered (${t.attempts} attempts)`);
  }

  private async complete(t: Trace, api: Api, candidate: Candidate, json: Json): Promise<Json> {
    const kind = candidate.provider.kind;
    const usage = kind === 'anthropic' ? anthropicUsage(json.usage) : openAiUsage(json.usage);
    const translated = api === kind ? { ...json, model: t.model } : api === 'openai' ? anthropicResponseToOpenAi(json, t.model) : openAiResponseToAnthropic(json, t.model);
    const { body, refusal } = t.guarded!.response(api, translated);
    // the caller waits for the usage event's commit, not for billing's answer (the hold covers it until billing has it)
    const settled = this.settle(t, usage, false);
    if (refusal) {
      // a refusal gives no answer: it stays the caller's error even if its events cannot be committed (logged)
      await Promise.all([settled, this.finish(t, { outcome: 'refused', reason: refusal.reason, usage })]).catch(() => undefined);
      throw refusal.error;
    }
    const response = api === 'openai' ? (body.choices as Json[] | undefined)?.map((c) => c.message) : body.content;
    // output review: an answer calling a reviewed tool is held, never released here (it is settled already)
    const reviewed = reviewedCalls(t.guarded!.policy, api, body);
    if (reviewed) {
      await settled;
      return this.hold(t, api, body, reviewed, { usage, response });
    }
    // the answer goes out once its audit and usage events are committed (a crash after this loses neither);
    // events that cannot be committed withhold it (503: fail closed, never an unrecorded answer)
    await Promise.all([settled, this.finish(t, { outcome: 'served', usage, response })]);
    return body;
  }

  /** Holds an answer for review (409 `review_required` with the held id and the approval to ask for); under zero retention nothing may keep it: refused (403). */
  private async hold(t: Trace, api: Api, body: Json, calls: ReviewedCalls, result: { usage: Usage; response: unknown }): Promise<never> {
    const named = calls.tools.join(', ');
    if (t.zeroRetention || !this.d.review) {
      t.guarded!.reviewed(calls.tools, false);
      await this.finish(t, { outcome: 'refused', reason: 'guard:review', usage: result.usage }).catch(() => undefined);
      const why = t.zeroRetention ? 'the tenant keeps no text (zero retention), so it cannot be held for review' : 'no store for held answers is configured';
      throw new PalisadeError('forbidden', `the model called ${named}, which the tenant's guard policy reviews: ${why} and is refused`, { guard: 'review' });
    }
    const receipt = await this.d.review.hold(t.principal, { requestId: t.requestId, api, body, calls }).catch(async (error: unknown) => {
      this.d.logger.warn({ requestId: t.requestId, code: (error as PalisadeError).code }, 'answer not held');
      t.guarded!.reviewed(calls.tools, false);
      await this.finish(t, { outcome: 'failed', reason: 'review-store', usage: result.usage }).catch(() => undefined);
      throw new PalisadeError('unavailable', `the model called ${named}, which the tenant's guard policy reviews, and the answer could not be held: refused`);
    });
    t.guarded!.reviewed(calls.tools, true);
    await this.finish(t, { outcome: 'refused', reason: 'review:held', ...result });
    throw reviewRequired(receipt, `the model called ${named}, which the tenant's guard policy reviews: the answer is held (details.review.heldId) until a person approves its release (ask the policy service for details.review.approval, then POST /v1/router/held/<heldId>/release with the approval's token)`);
  }

  private async *stream(t: Trace, input: CallInput, response: UpstreamResponse, deadline: Deadline): AsyncGenerator<string, void, undefined> {
    const { signal } = deadline;
    const parser = new SseParser();
    const unmasker = new StreamUnmasker(t.session!);
    const wantsUsage = (input.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const usage: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    let sawUsage = false;
    let complete = false;
    const texts: string[] = [];
    const caller = input.api === 'openai' ? openAiStreamHandler : anthropicStreamHandler;
    const state = streamStateOf({ usage, wantsUsage, unmasker, texts, model: t.model, guard: t.guarded!, onUsage: () => (sawUsage = true), onEnd: () => (complete = true) });
    // a provider of the other protocol: its events translated first (stream-translate.ts), its usage taken in its own terms
    const translator = t.served!.provider.kind === input.api ? undefined : input.api === 'openai' ? new AnthropicToOpenAiStream(t.model) : new OpenAiToAnthropicStream(t.model);
    const translated = { ...state, usage: { ...usage }, onUsage: () => undefined };
    const handle = (event: SseEvent): string | undefined => {
      if (!translator) return caller(event, state);
      const out = translator.push(event).map((e) => caller(e, translated) ?? '');
      Object.assign(usage, translator.usage);
      if (translator.sawUsage) sawUsage = true;
      return out.join('') || undefined;
    };
    // the caller's end marker (and whatever follows it) waits for the commit of the call's events
    let end = '';
    let stopped = true;
    try {
      for await (const chunk of response.body) {
        for (const event of parser.push(chunk)) {
          const out = handle(event);
          if (out && complete) end += out;
          else if (out) yield out;
        }
      }
      for (const event of parser.end()) {
        const out = handle(event);
        if (out && complete) end += out;
        else if (out) yield out;
      }
      stopped = false;
    } catch {
      // the provider cut the connection, or the deadline passed: reported below
      stopped = false;
    } finally {
      // the caller stopped reading (gone): still settled and recorded (a failure is logged), nothing more to send
      if (stopped) void this.streamEnded(t, texts, usage, complete, sawUsage, response, deadline).catch(() => undefined);
    }
    if (!complete) {
      // never a silent clean end: the caller learns the stream is cut
      const message = signal.aborted && !input.signal.aborted ? 'the request deadline passed before the stream was complete' : 'the provider ended the stream before it was complete';
      end = streamErrorOf(input.api, 'stream_cut', message);
    }
    const recorded = await this.streamEnded(t, texts, usage, complete, sawUsage, response, deadline).then(
      () => true,
      () => false,
    );
    // events that cannot be committed: no end marker, an error event instead (fail closed, as a JSON answer's 503)
    if (!recorded) end = streamErrorOf(input.api, 'unavailable', UNRECORDED);
    if (!input.signal.aborted) yield end;
  }

  /** A stream's end: its answer scanned, settled (real usage, or the hold when cut), recorded; resolves once its usage and audit events are committed, rejects when they cannot be. */
  private streamEnded(t: Trace, texts: string[], usage: Usage, complete: boolean, sawUsage: boolean, response: UpstreamResponse, deadline: Deadline): Promise<unknown> {
    t.guarded!.scan('output', texts.join(''));
    const estimated = !complete || !sawUsage;
    const committed = Promise.all([this.settle(t, usage, estimated), this.finish(t, { outcome: complete ? 'served' : 'cut', usage, estimated, response: texts.join('') })]);
    response.cancel();
    deadline.end();
    return committed;
  }

  /**
   * Settles the call twice over: the usage event (durable: billing's metering settles from
   * it) and the settle request (sent once the event's commit ended, not waited for: the
   * hold covers the call until billing has it). Resolves once the usage event is
   * committed; rejects (`unavailable`, the failure logged) when it cannot be.
   */
  private settle(t: Trace, usage: Usage, estimated: boolean): Promise<void> {
    const model = t.served!.model;
    const real = costMicros(model, { inputTokens: usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens, outputTokens: usage.outputTokens });
    const amountMicros = estimated ? t.reservedMicros : Math.min(real, t.reservedMicros);
    t.cost = amountMicros;
    // the rate limits keep what was used (all of the worst case when it is not known)
    void t.ticket?.settle(estimated ? Number.MAX_SAFE_INTEGER : usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens + usage.outputTokens);
    // the durable path: billing settles from this event if the request below is lost
    const { principal } = t;
    const usageLines = [
      { kind: 'input_tokens', quantity: usage.inputTokens },
      { kind: 'output_tokens', quantity: usage.outputTokens },
      ...(usage.cacheReadTokens ? [{ kind: 'cache_read_tokens', quantity: usage.cacheReadTokens }] : []),
      ...(usage.cacheWriteTokens ? [{ kind: 'cache_write_tokens', quantity: usage.cacheWriteTokens }] : []),
      ...(estimated ? [{ kind: 'estimated', quantity: 1 }] : []),
    ];
    const recorded = this.d.audit
      .recordUsage(principal, { requestId: t.requestId, agentId: principal.type === 'agent' ? principal.id : `user:${principal.id}`, ...(t.allotmentId ? { allotmentId: t.allotmentId } : {}), actualMicros: String(amountMicros), model: model.modelId, usage: usageLines }, this.now())
      .catch((error: unknown) => {
        this.d.logger.warn({ requestId: t.requestId, code: (error as PalisadeError).code }, 'usage event not written');
        throw new PalisadeError('unavailable', UNRECORDED);
      });
    // the settle request once the usage event is committed (or failed), and only after the answer (or its
    // end marker) has been written: the commit's other waiter writes it in the same turn of the event loop,
    // so the request's encoding and NATS write no longer come between the commit and the caller
    this.track(
      recorded.then(
        () => afterThisTurn(() => this.settleWithBilling(t, usage, amountMicros, estimated, 1)),
        // without the usage event the request is the only way the tokens are charged: it is retried
        () => afterThisTurn(() => this.settleWithBilling(t, usage, amountMicros, estimated, SETTLE_ATTEMPTS_UNRECORDED)),
      ),
    );
    return recorded;
  }

  /**
   * On shutdown, before billing's connection closes: waits, at most `ms`, for the settle
   * requests under way, retries included (for a call whose usage event was not written they
   * are its only charge).
   */
  async drain(ms: number): Promise<void> {
    if (this.settling.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.settling), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  private track(work: Promise<void>): void {
    this.settling.add(work);
    void work.finally(() => this.settling.delete(work));
  }

  private async settleWithBilling(t: Trace, usage: Usage, amountMicros: number, estimated: boolean, attempts: number): Promise<void> {
    const model = t.served!.model;
    for (let attempt = 1, backoffMs: number | undefined; ; attempt++) {
      try {
        await this.d.billing.settle({
          tenantId: t.principal.tenantId,
          requestId: t.requestId,
          amountMicros,
          estimated,
          usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, cacheReadTokens: usage.cacheReadTokens, cacheWriteTokens: usage.cacheWriteTokens },
          model: model.modelId,
          providerId: t.served!.provider.providerId,
        });
        return;
      } catch (error) {
        const code = (error as PalisadeError).code;
        if (attempt >= attempts) {
          // with the usage event committed, billing's metering settles from it; without it, an
          // expired hold is released and the call is not charged: an error for operators
          if (attempts === 1) this.d.logger.warn({ requestId: t.requestId, code }, 'settlement request failed: billing settles from the usage event');
          else this.d.logger.warn({ requestId: t.requestId, code, attempts }, 'settlement failed and no usage event was written: the call is not charged');
          return;
        }
        backoffMs = nextBackoffMs(backoffMs);
        await this.sleep(backoffMs);
      }
    }
  }

  private async release(t: Trace): Promise<void> {
    void t.ticket?.settle(0);
    if (t.cost !== undefined) return; // settled already (an answer refused by a guard)
    await this.d.billing.release({ tenantId: t.principal.tenantId, requestId: t.requestId }).catch((error: unknown) => {
      this.d.logger.warn({ requestId: t.requestId, code: (error as PalisadeError).code }, 'release failed: the hold expires at its deadline');
    });
  }

  /** The audit event; resolves once it is committed (group commit, shared with concurrent calls); rejects (`unavailable`, the failure logged) when it cannot be. */
  private finish(t: Trace, result: { outcome: ModelCallRecorded['outcome']; reason?: string; usage?: Usage; estimated?: boolean; response?: unknown }): Promise<void> {
    if (t.finished) return Promise.resolve();
    t.finished = true;
    const { principal } = t;
    const usage = result.usage ?? { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    const call: ModelCallRecorded = {
      requestId: t.requestId,
      api: t.api,
      operation: t.embeddings ? 'embeddings' : 'chat',
      ...(principal.type === 'agent' ? { agentId: principal.id, ...(principal.actingFor ? { userId: principal.actingFor } : {}) } : { userId: principal.id }),
      teams: [...(principal.teams ?? [])],
      requestedModel: clip(t.model, 200),
      ...(t.served ? { providerId: t.served.provider.providerId, model: t.served.model.modelId } : {}),
      classification: t.classification,
      outcome: result.outcome,
      ...(result.reason ? { reason: result.reason } : {}),
      streamed: t.streamed,
      attempts: t.attempts,
      inputTokens: usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens,
      outputTokens: usage.outputTokens,
      reservedMicros: t.reservedMicros,
      costMicros: t.cost ?? 0,
      estimated: result.estimated ?? false,
      latencyMs: Math.round(performance.now() - t.started),
      guards: t.guarded?.outcomes() ?? { pii: { masked: 0, byType: {} } },
    };
    const texts = t.zeroRetention ? undefined : { prompt: t.prompt, ...(result.response !== undefined ? { response: result.response } : {}) };
    return this.d.audit.record(principal, call, texts, this.now()).catch((error: unknown) => {
      this.d.logger.warn({ requestId: t.requestId, code: (error as PalisadeError).code }, 'model call audit event not written');
      throw new PalisadeError('unavailable', UNRECORDED);
    });
  }
}

/** Runs `work` once the promise reactions of this turn of the event loop (an answer being written) are done; resolves when it has. */
function afterThisTurn(work: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(() => void work().then(resolve, resolve)));
}

/** A call's deadline and its caller going away, as one signal; `end()` once the call is over. */
interface Deadline {
  signal: AbortSignal;
  end(): void;
}

/**
 * As `AbortSignal.any([caller, AbortSignal.timeout(ms)])`, with its timer dropped when the
 * call ends: a timeout signal's timer lives for the whole deadline (ten minutes by default),
 * one per request, long after the answer went out.
 */
function deadlineOf(caller: AbortSignal, ms: number): Deadline {
  const controller = new AbortController();
  const onCallerGone = () => controller.abort(caller.reason);
  const timer = setTimeout(() => controller.abort(new DOMException('the request deadline passed', 'TimeoutError')), ms);
  timer.unref();
  if (caller.aborted) onCallerGone();
  else caller.addEventListener('abort', onCallerGone, { once: true });
  return {
    signal: controller.signal,
    end: () => {
      clearTimeout(timer);
      caller.removeEventListener('abort', onCallerGone);
    },
  };
}

function requireCaller(principal: Principal): void {
  if (principal.type !== 'agent' && principal.type !== 'user') throw new PalisadeError('forbidden', 'models are called by agents and people');
}

function intOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

function reasonOf(error: unknown): string {
  if (!(error instanceof PalisadeError)) return 'internal';
  const guard = (error.details as { guard?: string } | undefined)?.guard;
  if (guard) return `guard:${guard}`;
  const rateLimit = (error.details as { rateLimit?: { scope: string; kind: string } } | undefined)?.rateLimit;
  if (rateLimit) return `rate-limit:${rateLimit.scope}:${rateLimit.kind}`;
  if (error.code === 'rate_limited') return `budget:${(error.details as { budget?: { level?: string } } | undefined)?.budget?.level ?? 'unknown'}`;
  if (error.code === 'forbidden') return 'compliance';
  if (error.code === 'unavailable' && error.message.startsWith('the PII detector')) return 'pii-detector';
  if (error.code === 'unavailable' && error.message.startsWith('billing')) return 'billing-unavailable';
  if (error.code === 'unavailable') return 'providers-failed';
  return error.code;
}

/** The body sent to the candidate: its model name, the clamped output limit, usage always asked on streams. */
function upstreamBodyOf(api: Api, candidate: Candidate, maskedBody: Json, maxTokens: number, stream: boolean): Json {
  const { kind } = candidate.provider;
  if (kind === 'openai') {
    const base = api === 'openai' ? { ...maskedBody } : anthropicRequestToOpenAi(maskedBody, maxTokens);
    base.model = candidate.model.upstreamModel;
    if (base.max_completion_tokens !== undefined) base.max_completion_tokens = maxTokens;
    else base.max_tokens = maxTokens;
    if (stream) {
      base.stream = true;
      base.stream_options = { ...((base.stream_options as Json | undefined) ?? {}), include_usage: true };
    }
    else delete base.stream_options;
    return base;
  }
  const base = api === 'anthropic' ? { ...maskedBody } : openAiRequestToAnthropic(maskedBody, maxTokens);
  base.model = candidate.model.upstreamModel;
  base.max_tokens = maxTokens;
  if (stream) base.stream = true;
  return base;
}
