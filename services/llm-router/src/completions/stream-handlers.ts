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

/** Hold-back lanes of tool calls: choice c, call i → TOOL_LANES + c × TOOL_LANES + i (text uses lane c). */
const TOOL_LANES = 1000;

export interface StreamState {
  usage: Usage;
  wantsUsage: boolean;
  unmasker: StreamUnmasker;
  texts: string[];
  model: string;
  guard: GuardRun;
  onUsage(): void;
  onEnd(): void;
}

/** An OpenAI chunk: usage taken (and stripped unless asked), content unmasked, the caller's model name. */
export function openAiStreamHandler(event: { data: string }, s: StreamState): string | undefined {
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
  const choices = (chunk.choices as Array<{ index: number; delta?: { content?: string | null; tool_calls?: Array<{ index: number; function?: { arguments?: string } }> }; finish_reason?: string | null }>) ?? [];
  if (!s.wantsUsage) {
    if (choices.length === 0 && chunk.usage) return undefined;
    delete chunk.usage;
  }
  for (const choice of choices) {
    if (choice.delta) s.guard.openAiToolDeltas(choice.index, choice.delta);
    if (choice.finish_reason) choice.finish_reason = s.guard.openAiFinish(choice.index, choice.finish_reason);
    let text = typeof choice.delta?.content === 'string' ? s.unmasker.push(choice.index, choice.delta.content) : '';
    if (choice.finish_reason) text += s.unmasker.flush(choice.index);
    if (choice.delta && (typeof choice.delta.content === 'string' || text !== '')) choice.delta.content = text;
    if (text) s.texts.push(text);
    // streamed tool-call arguments: unmasked like text, each call on its own hold-back lane
    for (const call of choice.delta?.tool_calls ?? []) {
      const lane = TOOL_LANES + choice.index * TOOL_LANES + call.index;
      if (call.function && typeof call.function.arguments === 'string') call.function.arguments = s.unmasker.push(lane, call.function.arguments, true);
    }
    if (choice.finish_reason) {
      const rest = s.unmasker.pending().filter((lane) => lane >= TOOL_LANES + choice.index * TOOL_LANES && lane < TOOL_LANES + (choice.index + 1) * TOOL_LANES);
      if (rest.length > 0 && choice.delta) {
        choice.delta.tool_calls = [...(choice.delta.tool_calls ?? []), ...rest.map((lane) => ({ index: lane - TOOL_LANES - choice.index * TOOL_LANES, function: { arguments: s.unmasker.flush(lane) } }))];
      }
    }
  }
  chunk.model = s.model;
  return sseOf({ data: JSON.stringify(chunk) });
}

/** An Anthropic event: usage taken once (message_start's input, message_delta's cumulative output), text unmasked. */
export function anthropicStreamHandler(event: { event?: string; data: string }, s: StreamState): string | undefined {
  let data: Json;
  try {
    data = JSON.parse(event.data) as Json;
  } catch {
    return undefined;
  }
  if (!s.guard.anthropicEvent(data)) return undefined;
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
    const delta = data.delta as { type: string; text?: string; partial_json?: string };
    if (delta.type === 'text_delta' && typeof delta.text === 'string') {
      delta.text = s.unmasker.push(Number(data.index), delta.text);
      s.texts.push(delta.text);
    } else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      // a tool call's streamed input: unmasked like text, on the block's own hold-back lane
      delta.partial_json = s.unmasker.push(TOOL_LANES + Number(data.index), delta.partial_json, true);
    }
  } else if (data.type === 'content_block_stop') {
    const json = s.unmasker.flush(TOOL_LANES + Number(data.index));
    if (json) return sseOf({ event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: data.index, delta: { type: 'input_json_delta', partial_json: json } }) }) + sseOf({ ...event, data: JSON.stringify(data) });
    const rest = s.unmasker.flush(Number(data.index));
    if (rest) {
      s.texts.push(rest);
      return sseOf({ event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: data.index, delta: { type: 'text_delta', text: rest } }) }) + sseOf({ ...event, data: JSON.stringify(data) });
    }
  } else if (data.type === 'message_stop') {
    s.onEnd();
  }
  return sseOf(event.event ? { event: event.event, data: JSON.stringify(data) } : { data: JSON.stringify(data) });
}
