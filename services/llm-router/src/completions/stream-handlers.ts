// The per-API handling of a stream's events for the caller (usage taken, text and
// tool-call arguments unmasked, calls to tools not allowed dropped, the caller's model
// name), used by CompletionsService.stream in the order the call path runs.
import type { GuardRun } from '../guards/guard-pipeline';
import { sseOf } from './sse';
import type { StreamUnmasker } from './stream-unmasker';

type Json = Record<string, unknown>;

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export function openAiUsage(u: unknown): Usage {
  const usage = (u ?? {}) as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return { inputTokens: (usage.prompt_tokens ?? 0) - cached, outputTokens: usage.completion_tokens ?? 0, cacheReadTokens: cached, cacheWriteTokens: 0 };
}

export function anthropicUsage(u: unknown): Usage {
  const usage = (u ?? {}) as Record<string, number | undefined>;
  return { inputTokens: usage.input_tokens ?? 0, outputTokens: usage.output_tokens ?? 0, cacheReadTokens: usage.cache_read_input_tokens ?? 0, cacheWriteTokens: usage.cache_creation_input_tokens ?? 0 };
}

/** A streamed tool call held until it is whole (OpenAI: per choice and call index). */
interface HeldCall {
  index: number;
  id?: string;
  name: string;
  args: string;
}

/** A streamed tool_use block held until its `content_block_stop` (Anthropic). */
interface HeldBlock {
  start: Json;
  json: string;
}

export interface StreamState {
  usage: Usage;
  wantsUsage: boolean;
  unmasker: StreamUnmasker;
  texts: string[];
  model: string;
  guard: GuardRun;
  /** Tool calls held whole until complete: OpenAI by `<choice>:<index>`, Anthropic by block index. */
  heldCalls: Map<string, HeldCall>;
  heldBlocks: Map<number, HeldBlock>;
  /** OpenAI: calls already passed on or dropped, by `<choice>:<index>` (a later piece of one is dropped, never passed on unchecked). */
  doneCalls: Set<string>;
  /** OpenAI: calls passed on per choice (the next one's index: renumbered densely past dropped ones). */
  passedCalls: Map<number, number>;
  onUsage(): void;
  onEnd(): void;
}

export function streamStateOf(base: Omit<StreamState, 'heldCalls' | 'heldBlocks' | 'doneCalls' | 'passedCalls'>): StreamState {
  return { ...base, heldCalls: new Map(), heldBlocks: new Map(), doneCalls: new Set(), passedCalls: new Map() };
}

type ToolCallDelta = { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } };

/**
 * An OpenAI chunk: usage taken (and stripped unless asked), content unmasked, the caller's
 * model name. Each tool call is held whole until it is complete — the next call of its
 * choice starts, its choice finishes, or (translated from Anthropic) its block stopped,
 * `completeCall` — then checked (allowlist, injection in the unmasked arguments) and
 * passed on at once, as one delta with its whole arguments, renumbered densely; a piece
 * of a call arriving after that is dropped. Text deltas stream as they come.
 */
export function openAiStreamHandler(event: { data: string; completeCall?: number }, s: StreamState): string | undefined {
  if (event.data === '[DONE]') {
    s.onEnd();
    return sseOf(event);
  }
  let chunk: Json;
  try {
    chunk = JSON.parse(event.data) as Json;
  } catch {
    return undefined;
  }
  if (chunk.usage) {
    Object.assign(s.usage, openAiUsage(chunk.usage));
    s.onUsage();
  }
  const choices = (chunk.choices as Array<{ index: number; delta?: { content?: string | null; tool_calls?: ToolCallDelta[] }; finish_reason?: string | null }>) ?? [];
  if (!s.wantsUsage) {
    if (choices.length === 0 && chunk.usage) return undefined;
    delete chunk.usage;
  }
  let held = 0;
  for (const choice of choices) {
    const released: ToolCallDelta[] = [];
    // a chunk only telling that a call is complete has nothing else for the caller
    const quiet = choice.delta?.tool_calls !== undefined || (event.completeCall !== undefined && choice.index === 0);
    if (choice.delta?.tool_calls) {
      for (const call of choice.delta.tool_calls) {
        // a piece of a call already passed on or dropped: dropped
        if (s.doneCalls.has(`${choice.index}:${call.index}`)) continue;
        // the calls before this one are complete once it starts
        released.push(...releaseCalls(s, choice.index, (index) => index !== call.index));
        holdCall(s, choice.index, call);
      }
      delete choice.delta.tool_calls;
    }
    if (event.completeCall !== undefined && choice.index === 0) released.push(...releaseCalls(s, 0, (index) => index === event.completeCall));
    let text = typeof choice.delta?.content === 'string' ? s.unmasker.push(choice.index, choice.delta.content) : '';
    if (choice.finish_reason) text += s.unmasker.flush(choice.index);
    if (choice.delta && (typeof choice.delta.content === 'string' || text !== '')) choice.delta.content = text;
    if (text) s.texts.push(text);
    if (choice.finish_reason) {
      released.push(...releaseCalls(s, choice.index, () => true));
      choice.finish_reason = s.guard.openAiFinish(choice.index, choice.finish_reason);
    }
    if (released.length > 0) (choice.delta ??= {}).tool_calls = released;
    else if (quiet && Object.keys(choice.delta ?? {}).length === 0 && !choice.finish_reason) held++;
  }
  // a chunk that only carried held argument deltas has nothing for the caller yet
  if (held > 0 && held === choices.length && !chunk.usage) return undefined;
  chunk.model = s.model;
  return sseOf({ data: JSON.stringify(chunk) });
}

function holdCall(s: StreamState, choice: number, delta: ToolCallDelta): void {
  const key = `${choice}:${delta.index}`;
  const call = s.heldCalls.get(key) ?? { index: delta.index, name: '', args: '' };
  if (delta.id !== undefined) call.id = delta.id;
  if (typeof delta.function?.name === 'string') call.name += delta.function.name;
  if (typeof delta.function?.arguments === 'string') call.args += delta.function.arguments;
  s.heldCalls.set(key, call);
}

/** The choice's complete calls (`which` by upstream index), in order: arguments unmasked, each checked by the guards; those kept, renumbered. */
function releaseCalls(s: StreamState, choice: number, which: (index: number) => boolean): ToolCallDelta[] {
  if (s.heldCalls.size === 0) return [];
  const prefix = `${choice}:`;
  const calls = [...s.heldCalls.entries()].filter(([key, call]) => key.startsWith(prefix) && which(call.index)).sort(([, a], [, b]) => a.index - b.index);
  const kept: ToolCallDelta[] = [];
  for (const [key, call] of calls) {
    s.heldCalls.delete(key);
    s.doneCalls.add(key);
    const args = s.unmasker.whole(call.args, true);
    if (!s.guard.passCall(choice, call.name, args)) continue;
    const index = s.passedCalls.get(choice) ?? 0;
    s.passedCalls.set(choice, index + 1);
    kept.push({ index, ...(call.id !== undefined ? { id: call.id } : {}), type: 'function', function: { name: call.name, arguments: args } });
  }
  return kept;
}

/**
 * An Anthropic event: usage taken once (message_start's input, message_delta's cumulative
 * output), text unmasked. A tool_use block is held from its start to its stop, then
 * checked (allowlist, injection in the unmasked input) and passed on as start, one
 * `input_json_delta` with the whole input, stop; or dropped, later blocks renumbered.
 */
export function anthropicStreamHandler(event: { event?: string; data: string }, s: StreamState): string | undefined {
  let data: Json;
  try {
    data = JSON.parse(event.data) as Json;
  } catch {
    return undefined;
  }
  const index = typeof data.index === 'number' ? data.index : undefined;
  if (index !== undefined && data.type === 'content_block_start' && (data.content_block as { type?: string } | undefined)?.type === 'tool_use') {
    s.heldBlocks.set(index, { start: data, json: '' });
    return undefined;
  }
  const block = index === undefined ? undefined : s.heldBlocks.get(index);
  if (block && index !== undefined) {
    const delta = data.delta as { type?: string; partial_json?: string } | undefined;
    if (data.type === 'content_block_delta' && delta?.type === 'input_json_delta' && typeof delta.partial_json === 'string') block.json += delta.partial_json;
    if (data.type !== 'content_block_stop') return undefined;
    s.heldBlocks.delete(index);
    return releaseBlock(s, index, block, data);
  }
  s.guard.anthropicEvent(data);
  if (data.type === 'message_start') {
    const message = data.message as Json;
    const start = anthropicUsage(message.usage);
    Object.assign(s.usage, { inputTokens: start.inputTokens, cacheReadTokens: start.cacheReadTokens, cacheWriteTokens: start.cacheWriteTokens, outputTokens: start.outputTokens });
    message.model = s.model;
  } else if (data.type === 'message_delta') {
    const usage = (data.usage ?? {}) as { output_tokens?: number };
    if (typeof usage.output_tokens === 'number') {
      s.usage.outputTokens = usage.output_tokens;
      s.onUsage();
    }
  } else if (data.type === 'content_block_delta') {
    const delta = data.delta as { type: string; text?: string };
    if (delta.type === 'text_delta' && typeof delta.text === 'string') {
      delta.text = s.unmasker.push(index!, delta.text);
      s.texts.push(delta.text);
    }
  } else if (data.type === 'content_block_stop') {
    const rest = s.unmasker.flush(index!);
    if (rest) {
      s.texts.push(rest);
      return sseOf({ event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: data.index, delta: { type: 'text_delta', text: rest } }) }) + sseOf({ ...event, data: JSON.stringify(data) });
    }
  } else if (data.type === 'message_stop') {
    s.onEnd();
  }
  return sseOf(event.event ? { event: event.event, data: JSON.stringify(data) } : { data: JSON.stringify(data) });
}

/** A whole tool_use block: checked, then passed on at its (renumbered) index as start, one input delta and stop, or dropped. */
function releaseBlock(s: StreamState, index: number, block: HeldBlock, stop: Json): string | undefined {
  const start = block.start;
  const name = String((start.content_block as { name?: unknown }).name ?? '');
  const input = s.unmasker.whole(block.json, true);
  const at = s.guard.anthropicToolBlock(index, name, input);
  if (at === undefined) return undefined;
  const out = [sseOf({ event: 'content_block_start', data: JSON.stringify({ ...start, index: at }) })];
  if (input !== '') out.push(sseOf({ event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: at, delta: { type: 'input_json_delta', partial_json: input } }) }));
  out.push(sseOf({ event: 'content_block_stop', data: JSON.stringify({ ...stop, index: at }) }));
  return out.join('');
}
