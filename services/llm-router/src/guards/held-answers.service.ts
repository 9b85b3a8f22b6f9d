import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { newEventId, PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, foldEvents, streamName, toDomainEvent, type EventStore } from '@palisade/eventsourcing';
import { isUndecided, type AuthorizeRequest, type PolicyClient } from '@palisade/policy-client';
import { assertReleasable, heldAnswerDecider, isExpired, type HeldAnswerCommand, type HeldAnswerState } from './held-answers.decider';
import { HELD_ANSWER_RESOURCE, RELEASE_ACTION, type HeldAnswerEvent, type ReleaseApproval } from './held-answers.events';
import type { HeldAnswersRepository } from './held-answers.repository';
import type { ReviewedCalls } from './review';

type Json = Record<string, unknown>;
type Api = 'openai' | 'anthropic';

export interface HeldAnswersDependencies {
  store: EventStore;
  eventContext: EventFactoryContext;
  repo: Pick<HeldAnswersRepository, 'insert' | 'peek' | 'take' | 'expired'>;
  /** The policy service's decisions (the release redeems an approval there). */
  policy: () => Pick<PolicyClient, 'authorize'> | undefined;
  /** How long a held answer waits for its release. */
  ttlMs: number;
  now?: () => Date;
  newId?: () => string;
}

/** What the caller learns of an answer held for review. */
export interface HeldReceipt {
  heldId: string;
  expiresAt: string;
  /** What to ask the policy service for (`POST /v1/approvals`) to have it released. */
  approval: ReleaseApproval;
  /** The key the stored answer is sealed with (AES-256-GCM): given to the caller once, kept nowhere by the router. */
  releaseKey?: string;
}

/** A held answer at rest: AES-256-GCM under a key only the caller holds, bound to the tenant and the held id. */
export interface SealedAnswer {
  iv: string;
  tag: string;
  data: string;
}

export function seal(body: Json, key: Buffer, binding: string): SealedAnswer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(binding));
  const data = Buffer.concat([cipher.update(JSON.stringify(body), 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** The answer, or undefined when the key (or the binding) is not the one it was sealed with. */
export function open(sealed: SealedAnswer, key: Buffer, binding: string): Json | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64')).setAAD(Buffer.from(binding)).setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8')) as Json;
  } catch {
    return undefined;
  }
}

const APPROVAL_TOKEN = /^([0-9a-f-]{36})\.[A-Za-z0-9_-]{43}$/;
const RELEASE_KEY = /^[A-Za-z0-9_-]{43}$/;
const streamOf = (tenantId: string, heldId: string) => streamName('llm-held', `${tenantId}.${heldId}`);

/** The error a held answer is to its caller (409 `review_required`): the held id and the approval to ask for, never the answer. */
export function reviewRequired(receipt: HeldReceipt, message: string): PalisadeError {
  return new PalisadeError('conflict', message, { review: receipt });
}

/**
 * Output review (issue 14): an answer calling a tool the tenant reviews is held (its
 * text in `held_answers`, its facts in stream `llm-held-<tenant>.<id>`) instead of
 * released. The caller (the agent, acting for its user) asks the policy service for the
 * approval of `llm.release` on `llm-answer` <id> with the parameters it was given, naming
 * this service; another person approves (four eyes, also across acting-for: the user the
 * agent acts for may not); the caller hands the one-time token to the release, and the
 * router redeems it with its own decision request (the approval names llm-router, so only
 * its decision consumes it), once. Only then is the answer returned, and deleted.
 */
export class HeldAnswersService {
  private readonly handler: CommandHandler<HeldAnswerState, HeldAnswerCommand, HeldAnswerEvent>;
  private readonly now: () => Date;
  private readonly newId: () => string;

  constructor(private readonly d: HeldAnswersDependencies) {
    this.handler = new CommandHandler(d.store, heldAnswerDecider, { eventContext: d.eventContext, tenantScoped: true });
    this.now = d.now ?? (() => new Date());
    this.newId = d.newId ?? newEventId;
  }

  /** Holds an answer (as the caller would have received it) for review; answers what the caller is told. */
  async hold(principal: Principal, input: { requestId: string; api: Api; body: Json; calls: ReviewedCalls }): Promise<HeldReceipt> {
    const heldId = this.newId();
    const key = randomBytes(32);
    const owner = { type: principal.type === 'agent' ? ('agent' as const) : ('user' as const), id: principal.id, ...(principal.actingFor ? { actingFor: principal.actingFor } : {}) };
    const result = await this.handler.handle(
      streamOf(principal.tenantId, heldId),
      { type: 'hold', data: { heldId, requestId: input.requestId, api: input.api, owner, tools: input.calls.tools, callsSha256: input.calls.callsSha256, ttlMs: this.d.ttlMs }, metadata: this.metadata(principal) },
      { expectedVersion: 0, alsoInTransaction: (tx, events) => this.d.repo.insert(tx, { tenantId: principal.tenantId, heldId, api: input.api, body: seal(input.body, key, `${principal.tenantId}/${heldId}`), expiresAt: (events[0].data as { expiresAt: string }).expiresAt }) },
    );
    return { ...receiptOf(result.state), releaseKey: key.toString('base64url') };
  }

  /**
   * The held answer, once: for its caller only (anyone else: not found), after the
   * approval's token was redeemed by the policy service for exactly this release. Without
   * a token: 409 (still waiting); a token the policy service does not redeem: 403 naming why.
   */
  async release(principal: Principal, token: string | undefined, heldId: string, approvalToken: string | undefined, releaseKey?: string): Promise<{ api: Api; body: Json }> {
    const now = this.now();
    const state = await this.load(principal.tenantId, heldId);
    if (isExpired(state, now)) await this.expire(principal.tenantId, heldId);
    assertReleasable(state, principal, now);
    const receipt = receiptOf(state);
    if (approvalToken === undefined) throw reviewRequired(receipt, `the answer awaits review: ask the policy service for the approval in details.review.approval, then release it with the approval's token`);
    const match = APPROVAL_TOKEN.exec(approvalToken);
    if (!match) throw new PalisadeError('validation', 'approvalToken: must be the token the approval gave');
    if (!releaseKey || !RELEASE_KEY.test(releaseKey)) throw new PalisadeError('validation', 'releaseKey: must be the key given with the held answer');
    // the key is checked before the approval is spent
    const sealed = await this.d.repo.peek(principal.tenantId, heldId);
    const body = sealed && open(sealed, Buffer.from(releaseKey, 'base64url'), `${principal.tenantId}/${heldId}`);
    if (!body) throw new PalisadeError('forbidden', 'releaseKey: not the key of this held answer');
    const policy = this.d.policy();
    if (!policy) throw new PalisadeError('unavailable', 'the policy service could not decide on the release (not connected yet)');
    const subject: AuthorizeRequest['subject'] = { type: principal.type === 'agent' ? 'agent' : 'user', id: principal.id, ...(token ? { token } : {}) };
    const decision = await policy.authorize({ tenantId: principal.tenantId, subject, action: RELEASE_ACTION, resource: { type: HELD_ANSWER_RESOURCE, id: heldId }, parameters: receipt.approval.parameters, approvalToken });
    if (isUndecided(decision)) throw new PalisadeError('unavailable', `the policy service could not decide on the release (${decision.reason})`);
    if (decision.decision !== 'allow') throw new PalisadeError('forbidden', `policy: the release was not approved (rule ${decision.rule}: ${decision.reason})`, { rule: decision.rule });
    // a plain allow redeemed nothing: the tenant has not made llm.release a critical action, and no one reviewed
    if (decision.rule !== 'approval') throw new PalisadeError('forbidden', `policy: ${RELEASE_ACTION} is not a critical action of the tenant, so no approval was redeemed: the answer stays held`, { rule: decision.rule });
    await this.handler.handle(
      streamOf(principal.tenantId, heldId),
      { type: 'release', data: { caller: { type: principal.type, id: principal.id }, approvalId: match[1] }, metadata: this.metadata(principal) },
      { alsoInTransaction: async (tx) => void (await this.d.repo.take(tx, principal.tenantId, heldId)) },
    );
    return { api: state.held!.api, body };
  }

  /** Expires what is past its time (the `expired` event, the text deleted); answers how many. */
  async sweep(limit = 100): Promise<number> {
    const due = await this.d.repo.expired(this.now(), limit);
    for (const { tenantId, heldId } of due) await this.expire(tenantId, heldId);
    return due.length;
  }

  private async expire(tenantId: string, heldId: string): Promise<void> {
    await this.handler.handle(streamOf(tenantId, heldId), { type: 'expire', data: {}, metadata: { tenantId, actor: { type: 'service', id: 'llm-router' }, now: this.now() } }, {
      alsoInTransaction: async (tx, events) => {
        if (events.length > 0) await this.d.repo.take(tx, tenantId, heldId);
      },
    });
  }

  private async load(tenantId: string, heldId: string): Promise<HeldAnswerState> {
    const stream = await this.d.store.inTransaction((tx) => this.d.store.readStream(tx, streamOf(tenantId, heldId)));
    const events = stream.events.filter((s) => s.event.tenantId === tenantId).map((s) => toDomainEvent<HeldAnswerEvent>(s.event));
    return foldEvents(heldAnswerDecider, events);
  }

  private metadata(principal: Principal) {
    return { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() };
  }
}

function receiptOf(state: HeldAnswerState): HeldReceipt {
  const held = state.held!;
  return {
    heldId: held.heldId,
    expiresAt: held.expiresAt,
    approval: { action: RELEASE_ACTION, resource: { type: HELD_ANSWER_RESOURCE, id: held.heldId }, parameters: { tools: held.tools, callsSha256: held.callsSha256 }, service: 'llm-router' },
  };
}
