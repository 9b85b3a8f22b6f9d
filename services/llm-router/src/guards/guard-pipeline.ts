import { clip, PalisadeError, type Principal } from '@palisade/contracts';
import { callerRules, classify, classWhenServed, permits, raisedByRules, type CallerRules, type Candidate, type Classification, type ClassificationRule, type RuleSubject } from '../completions/routing';
import { DEFAULT_GUARD_POLICY, strictestPiiAction, type GuardPolicy, type InjectionAction, type ToolCallAction } from './guard-policy.events';
import type { GuardPolicyService } from './guard-policy.service';
import { InjectionScanner, type InjectionFinding, type TextSource } from './injection.scanner';
import { KeywordIndex } from './keywords';
import type { EntityType, PiiDetector } from './pii.detector';
import { MaskingSession, type MaskStatistics } from './pii.masker';
import { refuseStreamedReview } from './review';
import { offeredToolNames, type ToolAllowlist } from './tool-allowlist';

type Json = Record<string, unknown>;
type Api = 'openai' | 'anthropic';

/** What the guards did to one call, for its audit event: counts, rule ids and tool names, never a value or a text. */
export interface GuardOutcomes {
  pii: { masked: number; byType: MaskStatistics; allowed?: MaskStatistics; blocked?: EntityType[] };
  injection?: { action: InjectionAction; blocked: boolean; findings: InjectionFinding[] };
  tools?: { action: ToolCallAction; offered: number; removedFromRequest: string[]; removedCalls: string[]; refused: boolean };
  /** Output review: the reviewed tools the answer called, and whether it was held (false: refused). */
  review?: { tools: string[]; held: boolean };
  /** How the class came about when it is not the declared one: the tenant's rules that raised it (by position in the policy, with the rule), and the detector's raise. */
  classification?: { declared: Classification; rules?: Array<{ index: number } & ClassificationRule>; detector?: Classification };
}

export interface GuardPipelineDependencies {
  detector: Pick<PiiDetector, 'detect'>;
  piiDeadlineMs: number;
  /** The tenant's guard policy; absent: the default (mask everything, flag injections). */
  policies?: Pick<GuardPolicyService, 'current'>;
  /** The policy service's tool allowlists; absent: tools are not checked (unit tests of other parts only; the service always wires it). */
  tools?: ToolAllowlist;
  scanner?: InjectionScanner;
}

export interface InboundInput {
  api: Api;
  principal: Principal;
  /** The caller's access token, for the policy service (it takes the agent and its user from it). */
  token?: string;
  /** The model or route the request names (the tenant's classification rules may name it). */
  model: string;
  /** The models that may serve it (a route's candidates, or the model named): their rules may raise its class, so the PII policy of each class they may give is applied, the strictest per entity type. */
  candidates?: readonly string[];
  body: Json;
}

/** A refusal of an answer already paid for: the caller gets the error, billing the usage. */
export interface ResponseRefusal {
  reason: string;
  error: PalisadeError;
}

/**
 * The guards of one call, from the request to the end of the answer: the masking session
 * (its placeholders are needed to unmask), the classification after detection, the tools
 * the model may call, and what each guard found.
 */
export class GuardRun {
  readonly session: MaskingSession;
  classification: Classification;
  policy: GuardPolicy = DEFAULT_GUARD_POLICY;
  /** Tools the model may call (offered and allowed); undefined: tool calls are not checked. */
  tools?: Set<string>;
  private readonly findings: InjectionFinding[] = [];
  private injectionBlocked = false;
  private toolOutcome?: NonNullable<GuardOutcomes['tools']>;
  private reviewOutcome?: NonNullable<GuardOutcomes['review']>;
  private classificationOutcome?: NonNullable<GuardOutcomes['classification']>;
  /** Who asks for what, as the tenant's rules see it (set by `classify`). */
  private subject: RuleSubject = { teams: [], model: '' };
  /** The tenant's rules as they apply to this caller and request (set by `classify`). */
  private rules: CallerRules;
  /** What the detector found (raises the class). */
  private found: readonly EntityType[] = [];
  /** The models tried for the call so far, in order (their rules apply). */
  private readonly served: string[] = [];
  /** Streams: tool calls passed on, per OpenAI choice (Anthropic: choice 0). */
  private readonly passedCalls = new Map<number, number>();
  /** Streams (Anthropic): tool_use blocks removed, by original index. */
  private readonly removedBlocks: number[] = [];
  /** The keywords of both guards in each input text scanned: the detector reads them again instead of a second pass. */
  private readonly keywordsSeen = new Map<string, ReadonlySet<string>>();

  constructor(
    detector: Pick<PiiDetector, 'detect'>,
    /** The class the caller declared (or the default). */
    readonly declared: Classification,
    private readonly scanner: InjectionScanner,
    /** The scanner's and the detector's keywords in one index; without it each guard makes its own pass. */
    private readonly keywords?: KeywordIndex,
  ) {
    this.session = new MaskingSession(keywords ? { detect: (text) => detector.detect(text, this.keywordsSeen.get(text)) } : detector);
    this.classification = declared;
    this.rules = { before: declared, onModel: [] };
  }

  outcomes(): GuardOutcomes {
    const s = this.session;
    return {
      pii: { masked: s.masked, byType: { ...s.statistics }, ...(Object.keys(s.allowed).length ? { allowed: { ...s.allowed } } : {}), ...(s.blocked.size ? { blocked: [...s.blocked].sort() } : {}) },
      ...(this.findings.length ? { injection: { action: this.policy.injection, blocked: this.injectionBlocked, findings: this.findings } } : {}),
      ...(this.toolOutcome ? { tools: this.toolOutcome } : {}),
      ...(this.reviewOutcome ? { review: this.reviewOutcome } : {}),
      ...(this.classificationOutcome ? { classification: this.classificationOutcome } : {}),
    };
  }

  /**
   * The tenant's rules for this caller and the model or route it names: the class before
   * routing is the declared one raised by the matching rules. Returns every class the
   * rules may give the request, before routing and with each candidate that may serve it
   * (the PII policy is read for each of them).
   */
  classify(principal: Principal, model: string, candidates: readonly string[] = []): Classification[] {
    this.subject = { teams: [...(principal.teams ?? []), ...(principal.department ? [principal.department] : [])], ...(principal.type === 'agent' ? { agentId: principal.id } : {}), model };
    this.rules = callerRules(this.declared, this.policy.classificationRules ?? [], this.subject);
    this.update();
    if (this.rules.onModel.length === 0) return [this.rules.before];
    return [...new Set([this.rules.before, ...candidates.map((id) => classWhenServed(this.rules, [id]))])];
  }

  /** What the detector found raises the class further (never lowers it). */
  detected(found: readonly EntityType[]): void {
    this.found = found;
    this.update();
  }

  /** The class once these models have been tried, the last one about to be (`routing.ts`, `ClassOf`): the rules naming any of them apply, then the detector's raise. */
  classOf(served: readonly string[]): Classification {
    return classify(classWhenServed(this.rules, served), this.found);
  }

  /**
   * A candidate about to be tried: the class raised by its rules (and those of the
   * candidates tried before it) becomes the call's, for the audit event. Its provider
   * must be permitted to receive that class (the plan keeps only such candidates; checked
   * again here, before anything is sent): else refused.
   */
  serving(candidate: Pick<Candidate, 'model' | 'provider'>): Classification {
    if (!this.served.includes(candidate.model.modelId)) this.served.push(candidate.model.modelId);
    this.update();
    if (!permits(candidate.provider.compliance, this.classification)) {
      throw new PalisadeError('forbidden', `provider ${candidate.provider.providerId} may not receive ${this.classification} data: refused, nothing was sent`, { classification: this.classification });
    }
    return this.classification;
  }

  private update(): void {
    const ruled = classWhenServed(this.rules, this.served);
    this.classification = classify(ruled, this.found);
    if (this.classification === this.declared) {
      this.classificationOutcome = undefined;
      return;
    }
    // which rules raised it: only asked when the class is not the declared one
    const rules = this.policy.classificationRules ?? [];
    const raisedBy = ruled === this.declared ? [] : raisedByRules(this.declared, rules, { ...this.subject, served: this.served }).raisedBy;
    this.classificationOutcome = {
      declared: this.declared,
      ...(raisedBy.length ? { rules: raisedBy.map((index) => ({ index, ...rules[index] })) } : {}),
      ...(this.classification !== ruled ? { detector: this.classification } : {}),
    };
  }

  /** Scans a text; a high-confidence finding under `injection: block` is returned as a refusal. */
  scan(source: TextSource, text: string): PalisadeError | undefined {
    let present: ReadonlySet<string> | undefined;
    if (this.keywords && source !== 'output') this.keywordsSeen.set(text, (present = this.keywords.present(text)));
    const found = this.scanner.scan(text, present);
    if (!found) return undefined;
    const same = this.findings.find((f) => f.source === source);
    if (same) {
      same.rules = [...new Set([...same.rules, ...found.rules])];
      if (found.confidence === 'high') same.confidence = 'high';
    } else this.findings.push({ source, ...found });
    if (this.policy.injection !== 'block' || found.confidence !== 'high') return undefined;
    this.injectionBlocked = true;
    const where = source === 'tool' ? 'a tool result' : source === 'output' ? "the model's answer" : 'the prompt';
    return new PalisadeError('forbidden', `the prompt-injection guard found an injection in ${where} (rules ${found.rules.join(', ')}): refused by the tenant's guard policy`, { guard: 'injection' });
  }

  /** Records that the answer called reviewed tools, and whether it was held for review. */
  reviewed(tools: string[], held: boolean): void {
    this.reviewOutcome = { tools: tools.map((name) => clip(name, 200)), held };
  }

  /** Records tools offered to the model that the caller may not use. */
  toolsChecked(offered: number, removed: string[], refused: boolean): void {
    this.toolOutcome = { action: this.policy.toolCalls, offered, removedFromRequest: [...new Set(removed)].map((name) => clip(name, 200)), removedCalls: [], refused };
  }

  private callRemoved(name: string): void {
    this.toolOutcome ??= { action: this.policy.toolCalls, offered: 0, removedFromRequest: [], removedCalls: [], refused: false };
    this.toolOutcome.removedCalls.push(clip(name, 200));
  }

  private mayCall(name: unknown): boolean {
    return this.tools === undefined || (typeof name === 'string' && this.tools.has(name));
  }

  /**
   * A JSON answer in the caller's API (already translated): the originals back, calls to
   * tools the caller may not use removed (or, per the tenant's policy, the answer
   * refused), the answer's text scanned for injections.
   */
  response(api: Api, translated: Json): { body: Json; refusal?: ResponseRefusal } {
    const body = this.session.unmaskBody(translated);
    let removed = 0;
    if (api === 'openai') {
      for (const choice of (body.choices as Array<{ message?: Json; finish_reason?: string }> | undefined) ?? []) {
        const message = choice.message;
        const calls = message?.tool_calls as Array<{ function?: { name?: string } }> | undefined;
        if (!message || !Array.isArray(calls)) continue;
        const kept = calls.filter((c) => this.mayCall(c.function?.name) || (this.callRemoved(String(c.function?.name)), removed++, false));
        if (kept.length === calls.length) continue;
        if (kept.length > 0) message.tool_calls = kept;
        else {
          delete message.tool_calls;
          message.content ??= '';
          if (choice.finish_reason === 'tool_calls') choice.finish_reason = 'stop';
        }
      }
    } else if (Array.isArray(body.content)) {
      const blocks = body.content as Array<{ type?: string; name?: string }>;
      const kept = blocks.filter((b) => b.type !== 'tool_use' || this.mayCall(b.name) || (this.callRemoved(String(b.name)), removed++, false));
      if (kept.length !== blocks.length) {
        body.content = kept;
        if (body.stop_reason === 'tool_use' && !kept.some((b) => b.type === 'tool_use')) body.stop_reason = 'end_turn';
      }
    }
    if (removed > 0 && this.policy.toolCalls === 'refuse') {
      this.toolOutcome!.refused = true;
      return { body, refusal: { reason: 'guard:tools', error: new PalisadeError('forbidden', `the model called ${this.toolOutcome!.removedCalls.join(', ')}, which the caller may not use: the answer is refused by the tenant's guard policy`, { guard: 'tools' }) } };
    }
    const blocked = this.scan('output', answerText(api, body));
    return blocked ? { body, refusal: { reason: 'guard:injection', error: blocked } } : { body };
  }

  /**
   * Streams: a whole tool call (its arguments unmasked), before anything of it is passed
   * on: false when the caller may not call the tool, or when its arguments carry an
   * injection the tenant's policy blocks (high confidence); the call is then dropped and
   * recorded. `choice` counts the calls passed per OpenAI choice (Anthropic: 0).
   */
  passCall(choice: number, name: string, args: string): boolean {
    const blocked = this.scan('output', args);
    if (!this.mayCall(name) || blocked) {
      this.callRemoved(name);
      return false;
    }
    this.passedCalls.set(choice, (this.passedCalls.get(choice) ?? 0) + 1);
    return true;
  }

  /** Streams (OpenAI): `tool_calls` becomes `stop` when every call of the choice was removed. */
  openAiFinish(choice: number, reason: string): string {
    if (reason !== 'tool_calls' || !this.toolOutcome?.removedCalls.length) return reason;
    return (this.passedCalls.get(choice) ?? 0) === 0 ? 'stop' : reason;
  }

  /** Streams (Anthropic): a whole tool_use block, checked as `passCall`; its index for the caller (later blocks renumbered past removed ones), or undefined when removed. */
  anthropicToolBlock(index: number, name: string, input: string): number | undefined {
    if (this.passCall(0, name, input)) return this.renumbered(index);
    this.removedBlocks.push(index);
    return undefined;
  }

  /** Streams (Anthropic), every other event: renumbered past removed tool_use blocks; `tool_use` stop becomes `end_turn` when none is left. */
  anthropicEvent(data: Json): void {
    if (typeof data.index === 'number') data.index = this.renumbered(data.index);
    if (data.type === 'message_delta' && this.removedBlocks.length > 0 && (this.passedCalls.get(0) ?? 0) === 0) {
      const delta = data.delta as { stop_reason?: string } | undefined;
      if (delta?.stop_reason === 'tool_use') delta.stop_reason = 'end_turn';
    }
  }

  private renumbered(index: number): number {
    return index - this.removedBlocks.filter((i) => i < index).length;
  }
}

/**
 * The guards around a model call, in order: injections in what the model will read
 * (the caller's prompt, tool results, retrieved content), PII masked per the tenant's
 * policy (fail-closed), the class raised by what was found, the tools offered checked
 * against the caller's allowlist in the policy service. Then, on the answer: unmasking,
 * calls to tools not allowed removed, injections in the answer.
 */
export class GuardPipeline {
  private readonly scanner: InjectionScanner;
  /** One keyword pass over each input text serves both guards (when the detector has keywords: not a test double). */
  private readonly keywords?: KeywordIndex;

  constructor(private readonly d: GuardPipelineDependencies) {
    this.scanner = d.scanner ?? new InjectionScanner();
    const detectorKeywords = (d.detector as Partial<Pick<PiiDetector, 'keywords'>>).keywords;
    if (detectorKeywords) this.keywords = new KeywordIndex([...this.scanner.keywords.keywords, ...detectorKeywords.keywords]);
  }

  start(declared: Classification): GuardRun {
    return new GuardRun(this.d.detector, declared, this.scanner, this.keywords);
  }

  /** The body to send (masked, only allowed tools), or a refusal (403 naming the guard, 503 when a guard cannot decide). */
  async inbound(run: GuardRun, input: InboundInput): Promise<Json> {
    const { api, body } = input;
    if (this.d.policies) run.policy = await this.d.policies.current(input.principal.tenantId);
    // the tenant's rules first: the PII policy is read for every class they may give (the strictest action applies)
    const stated = run.classify(input.principal, input.model, input.candidates);
    for (const [source, text] of inputTexts(api, body)) {
      const refusal = run.scan(source, text);
      if (refusal) throw refusal;
    }
    const masked = run.session.maskBody(api === 'anthropic' ? { system: body.system, messages: body.messages } : { messages: body.messages }, {
      deadlineMs: this.d.piiDeadlineMs,
      actionOf: (type) => strictestPiiAction(run.policy, stated, type),
    });
    const out: Json = { ...body, ...masked };
    if (api === 'openai' || body.system === undefined) delete out.system;
    run.detected(run.session.found);
    if (this.d.tools) await this.checkTools(run, input, out);
    // output review: a stream offering a reviewed tool is refused before anything is sent
    refuseStreamedReview(run.policy, api, out);
    return out;
  }

  private async checkTools(run: GuardRun, input: InboundInput, out: Json): Promise<void> {
    const offered = offeredToolNames(input.api, out);
    const allowed = await this.d.tools!.allowed(input.principal, input.token, [...new Set(offered)]);
    run.tools = allowed;
    const removed = offered.filter((name) => !allowed.has(name));
    run.toolsChecked(offered.length, removed, removed.length > 0 && run.policy.toolCalls === 'refuse');
    if (removed.length === 0) return;
    if (run.policy.toolCalls === 'refuse') throw new PalisadeError('forbidden', `tools ${removed.join(', ')} are not allowed for this caller (policy service): refused by the tenant's guard policy`, { guard: 'tools' });
    const forced = forcedTool(input.api, out.tool_choice);
    if (forced !== undefined && !allowed.has(forced)) throw new PalisadeError('forbidden', `tool_choice: the tool ${forced} is not allowed for this caller (policy service)`, { guard: 'tools' });
    const kept = (out.tools as unknown[]).filter((_, i) => allowed.has(offered[i]));
    if (kept.length > 0) out.tools = kept;
    else {
      delete out.tools;
      delete out.tool_choice;
      delete out.parallel_tool_calls;
    }
  }
}

/** The texts the model will read that may carry an injection: the caller's messages and tool results (not the system prompt, not earlier answers). */
function* inputTexts(api: Api, body: Json): Generator<[TextSource, string]> {
  for (const message of (body.messages as Array<{ role?: string; content?: unknown }> | undefined) ?? []) {
    if (message.role === 'user') yield* textsOf(message.content, 'prompt');
    else if (api === 'openai' && (message.role === 'tool' || message.role === 'function')) yield* textsOf(message.content, 'tool');
  }
}

function* textsOf(content: unknown, source: TextSource): Generator<[TextSource, string]> {
  if (typeof content === 'string') {
    yield [source, content];
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content as Array<{ type?: string; text?: unknown; content?: unknown }>) {
    if (part.type === 'text' && typeof part.text === 'string') yield [source, part.text];
    else if (part.type === 'tool_result') yield* textsOf(part.content, 'tool');
  }
}

function forcedTool(api: Api, choice: unknown): string | undefined {
  if (!choice || typeof choice !== 'object') return undefined;
  const c = choice as { type?: string; name?: string; function?: { name?: string } };
  return api === 'openai' ? c.function?.name : c.type === 'tool' ? c.name : undefined;
}

/** The answer's text and its tool calls' arguments (what the caller or its tools act on). */
function answerText(api: Api, body: Json): string {
  if (api === 'openai') {
    return ((body.choices as Array<{ message?: { content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } }> } }> | undefined) ?? [])
      .flatMap((c) => [typeof c.message?.content === 'string' ? c.message.content : '', ...(c.message?.tool_calls ?? []).map((t) => (typeof t.function?.arguments === 'string' ? t.function.arguments : ''))])
      .join('\n');
  }
  return ((body.content as Array<{ type?: string; text?: string; input?: unknown }> | undefined) ?? []).map((b) => (b.type === 'text' ? (b.text ?? '') : b.type === 'tool_use' ? JSON.stringify(b.input ?? {}) : '')).join('\n');
}
