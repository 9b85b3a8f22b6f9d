/**
 * Streams across protocols: an Anthropic provider's events as OpenAI chat-completion
 * chunks, and an OpenAI-compatible provider's chunks as Anthropic message events. Text
 * deltas, tool calls with their arguments streamed as they come, stop reasons and usage
 * (cache tokens included, each counted once) are carried over. Pure: one upstream event in,
 * the caller's events out; the end marker of the caller's protocol (`[DONE]`,
 * `message_stop`) is produced only when the provider's own end arrives, so a cut stream
 * stays visibly cut.
 */
import type { SseEvent } from './sse';
import { STOP_TO_ANTHROPIC, STOP_TO_OPENAI } from './translate';

type Json = Record<string, unknown>;

/** Usage as the provider reported it, in its own terms (input without cached tokens). */
export interface StreamUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/** A translated event; an OpenAI chunk may also say that a tool call (by its OpenAI index) is complete, as Anthropic's `content_block_stop` does (the call path passes the call on then). */
export type TranslatedEvent = SseEvent & { completeCall?: number };

export interface StreamTranslator {
  push(event: SseEvent): TranslatedEvent[];
  /** The provider's usage so far (cumulative figures overwritten, never added). */
  readonly usage: StreamUsage;
  /** The provider reported its usage. */
  readonly sawUsage: boolean;
}

function parse(data: string): Json | undefined {
  try {
    const value = JSON.parse(data) as unknown;
    return value && typeof value === 'object' ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Anthropic `message_start` … `message_stop` → OpenAI `chat.completion.chunk`s and `[DONE]`. */
export class AnthropicToOpenAiStream implements StreamTranslator {
  readonly usage: StreamUsage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  sawUsage = false;
  private id = 'chatcmpl-';
  private readonly created = Math.floor(Date.now() / 1000);
  /** Content block index → OpenAI tool-call index. */
  private readonly tools = new Map<number, number>();
  private finish: string | null = null;

  constructor(private readonly model: string) {}

  push(event: SseEvent): TranslatedEvent[] {
    const data = parse(event.data);
    if (!data) return [];
    switch (data.type) {
      case 'message_start': {
        const message = (data.message ?? {}) as Json;
        this.id = `chatcmpl-${String(message.id ?? '')}`;
        this.takeUsage(message.usage);
        return [this.chunk({ role: 'assistant', content: '' })];
      }
      case 'content_block_start': {
        const block = (data.content_block ?? {}) as Json;
        if (block.type !== 'tool_use') return [];
        const index = this.tools.size;
        this.tools.set(Number(data.index), index);
        return [this.chunk({ tool_calls: [{ index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] })];
      }
      case 'content_block_delta': {
        const delta = (data.delta ?? {}) as Json;
        if (delta.type === 'text_delta' && typeof delta.text === 'string') return [this.chunk({ content: delta.text })];
        const tool = this.tools.get(Number(data.index));
        if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string' && tool !== undefined) {
          return delta.partial_json === '' ? [] : [this.chunk({ tool_calls: [{ index: tool, function: { arguments: delta.partial_json } }] })];
        }
        return [];
      }
      case 'message_delta': {
        this.takeUsage(data.usage);
        const reason = ((data.delta ?? {}) as Json).stop_reason;
        if (typeof reason === 'string') this.finish = STOP_TO_OPENAI[reason] ?? 'stop';
        return [];
      }
      case 'message_stop': {
        const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens } = this.usage;
        const prompt = inputTokens + cacheReadTokens + cacheWriteTokens;
        return [
          this.chunk({}, this.finish ?? 'stop'),
          { data: JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage: { prompt_tokens: prompt, completion_tokens: outputTokens, total_tokens: prompt + outputTokens, prompt_tokens_details: { cached_tokens: cacheReadTokens } } }) },
          { data: '[DONE]' },
        ];
      }
      case 'content_block_stop': {
        // a tool call's block stopped: the call is complete (an empty chunk saying so)
        const tool = this.tools.get(Number(data.index));
        return tool === undefined ? [] : [{ ...this.chunk({}), completeCall: tool }];
      }
      default:
        // ping; an `error` event leaves the stream without its end (reported as cut)
        return [];
    }
  }

  private chunk(delta: Json, finish: string | null = null): SseEvent {
    return { data: JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) };
  }

  private takeUsage(u: unknown): void {
    const usage = (u ?? {}) as Json;
    const input = num(usage.input_tokens);
    const output = num(usage.output_tokens);
    const read = num(usage.cache_read_input_tokens);
    const write = num(usage.cache_creation_input_tokens);
    if (input !== undefined) this.usage.inputTokens = input;
    if (read !== undefined) this.usage.cacheReadTokens = read;
    if (write !== undefined) this.usage.cacheWriteTokens = write;
    if (output !== undefined) {
      this.usage.outputTokens = output;
      this.sawUsage = true;
    }
  }
}

/** OpenAI `chat.completion.chunk`s and `[DONE]` → Anthropic `message_start` … `message_stop`. */
export class OpenAiToAnthropicStream implements StreamTranslator {
  readonly usage: StreamUsage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  sawUsage = false;
  private started = false;
  /** The content block open now (text, or a tool call by its OpenAI index), and the next block's index. */
  private open: { kind: 'text' } | { kind: 'tool'; call: number } | undefined;
  private next = 0;
  private stop: string | undefined;

  constructor(private readonly model: string) {}

  push(event: SseEvent): SseEvent[] {
    if (event.data === '[DONE]') {
      const out = this.begin('');
      out.push(...this.close());
      const usage = { input_tokens: this.usage.inputTokens, output_tokens: this.usage.outputTokens, cache_read_input_tokens: this.usage.cacheReadTokens, cache_creation_input_tokens: this.usage.cacheWriteTokens };
      out.push(ev('message_delta', { delta: { stop_reason: this.stop ?? 'end_turn', stop_sequence: null }, usage }), ev('message_stop', {}));
      return out;
    }
    const chunk = parse(event.data);
    if (!chunk) return [];
    const out = this.begin(String(chunk.id ?? ''));
    if (chunk.usage) this.takeUsage(chunk.usage);
    const choice = ((chunk.choices as Json[] | undefined) ?? [])[0];
    if (!choice) return out;
    const delta = (choice.delta ?? {}) as { content?: unknown; tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }> };
    if (typeof delta.content === 'string' && delta.content !== '') {
      if (this.open?.kind !== 'text') out.push(...this.close(), this.start({ type: 'text', text: '' }, { kind: 'text' }));
      out.push(ev('content_block_delta', { index: this.next - 1, delta: { type: 'text_delta', text: delta.content } }));
    }
    for (const call of delta.tool_calls ?? []) {
      const index = call.index ?? 0;
      if (call.id !== undefined || !(this.open?.kind === 'tool' && this.open.call === index)) {
        out.push(...this.close(), this.start({ type: 'tool_use', id: call.id ?? `toolu_${index}`, name: call.function?.name ?? '', input: {} }, { kind: 'tool', call: index }));
      }
      const args = call.function?.arguments;
      if (typeof args === 'string' && args !== '') out.push(ev('content_block_delta', { index: this.next - 1, delta: { type: 'input_json_delta', partial_json: args } }));
    }
    if (typeof choice.finish_reason === 'string') {
      this.stop = STOP_TO_ANTHROPIC[choice.finish_reason] ?? 'end_turn';
      out.push(...this.close());
    }
    return out;
  }

  private begin(id: string): SseEvent[] {
    if (this.started) return [];
    this.started = true;
    return [ev('message_start', { message: { id: `msg_${id}`, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } })];
  }

  private start(block: Json, open: NonNullable<OpenAiToAnthropicStream['open']>): SseEvent {
    this.open = open;
    return ev('content_block_start', { index: this.next++, content_block: block });
  }

  private close(): SseEvent[] {
    if (!this.open) return [];
    this.open = undefined;
    return [ev('content_block_stop', { index: this.next - 1 })];
  }

  private takeUsage(u: unknown): void {
    const usage = u as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
    const cached = num(usage.prompt_tokens_details?.cached_tokens) ?? 0;
    this.usage.inputTokens = Math.max(0, (num(usage.prompt_tokens) ?? 0) - cached);
    this.usage.cacheReadTokens = cached;
    this.usage.outputTokens = num(usage.completion_tokens) ?? 0;
    this.sawUsage = true;
  }
}

function ev(type: string, data: Json): SseEvent {
  return { event: type, data: JSON.stringify({ type, ...data }) };
}
