import { createHash } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';
import type { GuardPolicy } from './guard-policy.events';
import { offeredToolNames } from './tool-allowlist';

type Json = Record<string, unknown>;
type Api = 'openai' | 'anthropic';

/** The calls of reviewed tools in an answer: their names (sorted, once each) and a SHA-256 of every such call (name and arguments, in order). */
export interface ReviewedCalls {
  tools: string[];
  callsSha256: string;
}

/**
 * The calls of an answer (in the caller's API, already unmasked and checked against the
 * allowlist) to tools the tenant's guard policy puts under review; undefined when there
 * is none (the answer goes out as it is).
 */
export function reviewedCalls(policy: GuardPolicy, api: Api, body: Json): ReviewedCalls | undefined {
  const reviewed = new Set(policy.review?.tools ?? []);
  if (reviewed.size === 0) return undefined;
  const calls: Array<[string, string]> = [];
  if (api === 'openai') {
    for (const choice of (body.choices as Array<{ message?: { tool_calls?: Array<{ function?: { name?: unknown; arguments?: unknown } }> } }> | undefined) ?? []) {
      for (const call of choice.message?.tool_calls ?? []) {
        const name = String(call.function?.name ?? '');
        if (reviewed.has(name)) calls.push([name, String(call.function?.arguments ?? '')]);
      }
    }
  } else {
    for (const block of (body.content as Array<{ type?: string; name?: unknown; input?: unknown }> | undefined) ?? []) {
      const name = String(block.name ?? '');
      if (block.type === 'tool_use' && reviewed.has(name)) calls.push([name, JSON.stringify(block.input ?? {})]);
    }
  }
  if (calls.length === 0) return undefined;
  return { tools: [...new Set(calls.map(([name]) => name))].sort(), callsSha256: createHash('sha256').update(JSON.stringify(calls)).digest('hex') };
}

/**
 * A streamed request that offers a reviewed tool is refused before anything is sent: a
 * call cannot be held once its first bytes have reached the caller, and removing the tool
 * would change what the caller asked for without saying so.
 */
export function refuseStreamedReview(policy: GuardPolicy, api: Api, body: Json): void {
  const reviewed = policy.review?.tools ?? [];
  if (body.stream !== true || reviewed.length === 0 || !Array.isArray(body.tools)) return;
  const offered = offeredToolNames(api, body);
  const under = reviewed.filter((name) => offered.includes(name));
  if (under.length === 0) return;
  throw new PalisadeError(
    'validation',
    `tools: ${under.join(', ')} ${under.length === 1 ? 'is' : 'are'} under review by the tenant's guard policy (review.tools): an answer calling ${under.length === 1 ? 'it' : 'them'} is held for approval, which a stream cannot be; ask without stream`,
    { guard: 'review' },
  );
}
