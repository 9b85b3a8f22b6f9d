import { SseParser, sseOf, type SseEvent } from './sse';
import { AnthropicToOpenAiStream, OpenAiToAnthropicStream, type StreamTranslator } from './stream-translate';

// Golden round trips of streams across protocols: a provider's SSE bytes, split inside
// lines, words and UTF-8 characters, parsed and translated; the caller's events compared
// with golden ones, then translated back and compared with what the provider meant.

type Json = Record<string, unknown>;
const ev = (type: string, data: Json) => sseOf({ event: type, data: JSON.stringify({ type, ...data }) });

/** What Anthropic streams: text with multi-byte characters, a tool call with its JSON input in pieces, cache tokens. */
const ANTHROPIC =
  ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, cache_read_input_tokens: 10, cache_creation_input_tokens: 5, output_tokens: 1 } } }) +
  ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
  ev('ping', {}) +
  ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Weather in ' } }) +
  ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Zürich — 数据 ✓' } }) +
  ev('content_block_stop', { index: 0 }) +
  ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } }) +
  ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '' } }) +
  ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"city": "Zü' } }) +
  ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: 'rich", "unit": "°C"}' } }) +
  ev('content_block_stop', { index: 1 }) +
  ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 31 } }) +
  ev('message_stop', {});

const chunk = (delta: Json, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
/** What an OpenAI-compatible server streams: text, two tool calls with arguments in pieces, the usage chunk with cached tokens. */
const OPENAI =
  chunk({ role: 'assistant', content: '' }) +
  chunk({ content: 'Checking ' }) +
  chunk({ content: 'naïve 数据' }) +
  chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }) +
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Zürich"}' } }] }) +
  chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } }] }) +
  chunk({}, 'tool_calls') +
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: { prompt_tokens: 120, completion_tokens: 33, total_tokens: 153, prompt_tokens_details: { cached_tokens: 20 } } })}\n\n` +
  'data: [DONE]\n\n';

/** The provider's bytes in pieces of `size` (1 byte splits every UTF-8 character), through the parser and the translator. */
function translate(text: string, size: number, translator: StreamTranslator): SseEvent[] {
  const parser = new SseParser();
  const bytes = Buffer.from(text, 'utf8');
  const out: SseEvent[] = [];
  for (let at = 0; at < bytes.length; at += size) for (const e of parser.push(bytes.subarray(at, at + size))) out.push(...translator.push(e));
  for (const e of parser.end()) out.push(...translator.push(e));
  return out;
}

const json = (events: SseEvent[]) => events.map((e) => (e.data === '[DONE]' ? '[DONE]' : { ...(e.event ? { event: e.event } : {}), ...(JSON.parse(e.data) as Json) }));

/** What an OpenAI SDK would assemble from chunks. */
function assembleOpenAi(events: SseEvent[]) {
  let text = '';
  let finish: string | null = null;
  let usage: unknown;
  const calls: Array<{ id?: string; name?: string; arguments: string }> = [];
  let done = false;
  for (const e of events) {
    if (e.data === '[DONE]') {
      done = true;
      continue;
    }
    const c = JSON.parse(e.data) as { choices: Array<{ delta: { content?: string; tool_calls?: Array<{ index: number; id?: string; function?: { name?: string; arguments?: string } }> }; finish_reason: string | null }>; usage?: unknown };
    if (c.usage) usage = c.usage;
    for (const choice of c.choices) {
      text += choice.delta.content ?? '';
      for (const t of choice.delta.tool_calls ?? []) {
        calls[t.index] ??= { arguments: '' };
        if (t.id) calls[t.index].id = t.id;
        if (t.function?.name) calls[t.index].name = t.function.name;
        calls[t.index].arguments += t.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
  }
  return { text, calls, finish, usage, done };
}

/** What an Anthropic SDK would assemble from events. */
function assembleAnthropic(events: SseEvent[]) {
  const blocks: Array<{ type: string; text?: string; id?: string; name?: string; json?: string }> = [];
  let stop: unknown;
  let usage: Json = {};
  let done = false;
  const open = new Set<number>();
  for (const e of events) {
    const d = JSON.parse(e.data) as Json & { index: number; delta: Json; content_block: Json; message: Json; usage: Json };
    expect(e.event).toBe(d.type);
    if (d.type === 'message_start') usage = { ...(d.message.usage as Json) };
    if (d.type === 'content_block_start') {
      expect(d.index).toBe(blocks.length);
      open.add(d.index);
      blocks.push({ type: String(d.content_block.type), ...(d.content_block.type === 'text' ? { text: '' } : { id: String(d.content_block.id), name: String(d.content_block.name), json: '' }) });
    }
    if (d.type === 'content_block_delta') {
      expect(open.has(d.index)).toBe(true);
      if (d.delta.type === 'text_delta') blocks[d.index].text += String(d.delta.text);
      if (d.delta.type === 'input_json_delta') blocks[d.index].json += String(d.delta.partial_json);
    }
    if (d.type === 'content_block_stop') open.delete(d.index);
    if (d.type === 'message_delta') {
      stop = d.delta.stop_reason;
      usage = { ...usage, ...d.usage };
    }
    if (d.type === 'message_stop') done = true;
  }
  expect(open.size).toBe(0);
  return { blocks: blocks.map((b) => (b.json !== undefined ? { ...b, json: JSON.parse(b.json || '{}') as unknown } : b)), stop, usage, done };
}

const SIZES = [1, 2, 3, 5, 7, 64, 100_000];

describe('streams across protocols (golden round trips)', () => {
  // A translator stamps its chunks with the second it was made: one clock for the whole
  // file, so that translations compared with each other never straddle a second.
  beforeAll(() => jest.spyOn(Date, 'now').mockReturnValue(Date.parse('2026-12-03T12:00:00.000Z')));
  afterAll(() => jest.restoreAllMocks());

  it('an Anthropic stream as OpenAI chunks: text, the tool call with its streamed arguments, the stop reason, usage with cache tokens once', () => {
    const golden = json(translate(ANTHROPIC, 100_000, new AnthropicToOpenAiStream('sonnet')));
    const base = { id: 'chatcmpl-msg_1', object: 'chat.completion.chunk', created: expect.any(Number), model: 'sonnet' };
    const c = (delta: Json, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    expect(golden).toEqual([
      c({ role: 'assistant', content: '' }),
      c({ content: 'Weather in ' }),
      c({ content: 'Zürich — 数据 ✓' }),
      c({ tool_calls: [{ index: 0, id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      c({ tool_calls: [{ index: 0, function: { arguments: '{"city": "Zü' } }] }),
      c({ tool_calls: [{ index: 0, function: { arguments: 'rich", "unit": "°C"}' } }] }),
      // the block's stop: the call is complete (the call path passes it on here, not at the end)
      c({}),
      c({}, 'tool_calls'),
      { ...base, choices: [], usage: { prompt_tokens: 55, completion_tokens: 31, total_tokens: 86, prompt_tokens_details: { cached_tokens: 10 } } },
      '[DONE]',
    ]);
    expect(translate(ANTHROPIC, 100_000, new AnthropicToOpenAiStream('sonnet')).flatMap((e) => ('completeCall' in e ? [e.completeCall] : []))).toEqual([0]);
    // the same, however the bytes were split (inside lines, words and UTF-8 characters)
    for (const size of SIZES) {
      const t = new AnthropicToOpenAiStream('sonnet');
      expect(json(translate(ANTHROPIC, size, t))).toEqual(golden);
      expect(t.usage).toEqual({ inputTokens: 40, outputTokens: 31, cacheReadTokens: 10, cacheWriteTokens: 5 });
      expect(t.sawUsage).toBe(true);
    }
  });

  it('an OpenAI stream as Anthropic events: a text block, one tool_use block per call with input_json_delta, stop reason and usage in message_delta', () => {
    const golden = json(translate(OPENAI, 100_000, new OpenAiToAnthropicStream('gpt')));
    expect(golden).toEqual([
      { event: 'message_start', type: 'message_start', message: { id: 'msg_c1', type: 'message', role: 'assistant', model: 'gpt', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } },
      { event: 'content_block_start', type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { event: 'content_block_delta', type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Checking ' } },
      { event: 'content_block_delta', type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'naïve 数据' } },
      { event: 'content_block_stop', type: 'content_block_stop', index: 0 },
      { event: 'content_block_start', type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_a', name: 'get_weather', input: {} } },
      { event: 'content_block_delta', type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
      { event: 'content_block_delta', type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Zürich"}' } },
      { event: 'content_block_stop', type: 'content_block_stop', index: 1 },
      { event: 'content_block_start', type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'call_b', name: 'get_time', input: {} } },
      { event: 'content_block_delta', type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"tz":"CET"}' } },
      { event: 'content_block_stop', type: 'content_block_stop', index: 2 },
      { event: 'message_delta', type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 100, output_tokens: 33, cache_read_input_tokens: 20, cache_creation_input_tokens: 0 } },
      { event: 'message_stop', type: 'message_stop' },
    ]);
    for (const size of SIZES) {
      const t = new OpenAiToAnthropicStream('gpt');
      expect(json(translate(OPENAI, size, t))).toEqual(golden);
      expect(t.usage).toEqual({ inputTokens: 100, outputTokens: 33, cacheReadTokens: 20, cacheWriteTokens: 0 });
    }
  });

  it('round trip Anthropic → OpenAI → Anthropic keeps text, tool calls, stop reason and the token total (cache writes fold into input: OpenAI has no field for them)', () => {
    const original = assembleAnthropic(translate(ANTHROPIC, 100_000, { push: (e: SseEvent) => [e] } as unknown as StreamTranslator));
    const openai = translate(ANTHROPIC, 3, new AnthropicToOpenAiStream('sonnet'));
    const back = assembleAnthropic(translate(openai.map(sseOf).join(''), 5, new OpenAiToAnthropicStream('sonnet')));
    expect(back.blocks).toEqual(original.blocks);
    expect(back.blocks).toEqual([
      { type: 'text', text: 'Weather in Zürich — 数据 ✓' },
      { type: 'tool_use', id: 'toolu_1', name: 'get_weather', json: { city: 'Zürich', unit: '°C' } },
    ]);
    expect(back.stop).toBe('tool_use');
    expect(back.usage).toMatchObject({ input_tokens: 45, cache_read_input_tokens: 10, output_tokens: 31 });
    expect(back.done).toBe(true);
  });

  it('round trip OpenAI → Anthropic → OpenAI keeps text, both tool calls with their arguments, the finish reason and usage', () => {
    const original = assembleOpenAi(translate(OPENAI, 100_000, { push: (e: SseEvent) => [e] } as unknown as StreamTranslator));
    const anthropic = translate(OPENAI, 2, new OpenAiToAnthropicStream('gpt'));
    const back = assembleOpenAi(translate(anthropic.map(sseOf).join(''), 7, new AnthropicToOpenAiStream('gpt')));
    expect(back.text).toBe(original.text);
    expect(back.calls).toEqual(original.calls);
    expect(back.calls).toEqual([
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Zürich"}' },
      { id: 'call_b', name: 'get_time', arguments: '{"tz":"CET"}' },
    ]);
    expect(back.finish).toBe('tool_calls');
    expect(back.usage).toEqual(original.usage);
    expect(back.done).toBe(true);
  });

  it('maps every stop reason both ways', () => {
    const finishOf = (reason: string) => assembleOpenAi(translate(ev('message_start', { message: { id: 'm', usage: { input_tokens: 1 } } }) + ev('message_delta', { delta: { stop_reason: reason }, usage: { output_tokens: 1 } }) + ev('message_stop', {}), 4, new AnthropicToOpenAiStream('m'))).finish;
    expect(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'refusal', 'pause_turn'].map(finishOf)).toEqual(['stop', 'length', 'stop', 'tool_calls', 'content_filter', 'stop']);
    const stopOf = (finish: string) => assembleAnthropic(translate(chunk({ content: 'x' }) + chunk({}, finish) + 'data: [DONE]\n\n', 4, new OpenAiToAnthropicStream('m'))).stop;
    expect(['stop', 'length', 'tool_calls', 'content_filter'].map(stopOf)).toEqual(['end_turn', 'max_tokens', 'tool_use', 'refusal']);
  });

  it('never invents the end of a cut stream: no [DONE] nor message_stop unless the provider sent its own end', () => {
    const cutAnthropic = ANTHROPIC.slice(0, ANTHROPIC.indexOf('event: message_delta'));
    const toOpenAi = translate(cutAnthropic, 3, new AnthropicToOpenAiStream('m'));
    expect(toOpenAi.some((e) => e.data === '[DONE]')).toBe(false);
    expect(assembleOpenAi(toOpenAi).finish).toBeNull();
    const cutOpenAi = OPENAI.slice(0, OPENAI.indexOf('data: [DONE]'));
    const t = new OpenAiToAnthropicStream('m');
    const toAnthropic = translate(cutOpenAi, 3, t);
    expect(toAnthropic.some((e) => e.event === 'message_stop' || e.event === 'message_delta')).toBe(false);
    // the usage chunk arrived before the cut: known, but the stream is still not complete
    expect(t.sawUsage).toBe(true);
  });
});
