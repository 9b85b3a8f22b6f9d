/**
 * OpenAI chat completions ↔ Anthropic messages, non-streaming: text, system prompts,
 * images (base64 and URLs), tool definitions, tool calls and tool results (images inside
 * tool results too), stop reasons and usage (cache tokens included). Pure functions.
 */
type Json = Record<string, unknown>;

interface OpenAiMessage {
  role: string;
  content?: unknown;
  tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
  name?: string;
}

interface AnthropicBlock {
  type: string;
  text?: string;
  source?: { type: string; media_type?: string; data?: string; url?: string };
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

function imageToAnthropic(url: string): AnthropicBlock {
  const m = DATA_URL.exec(url);
  return m ? { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] } } : { type: 'image', source: { type: 'url', url } };
}

function imageToOpenAi(block: AnthropicBlock): Json {
  const s = block.source ?? { type: 'url' };
  const url = s.type === 'base64' ? `data:${s.media_type};base64,${s.data}` : String(s.url ?? '');
  return { type: 'image_url', image_url: { url } };
}

function openAiPartsToAnthropic(content: unknown): AnthropicBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((p: { type?: string; text?: string; image_url?: { url: string } }) => {
    if (p.type === 'text') return [{ type: 'text', text: p.text ?? '' }];
    if (p.type === 'image_url' && p.image_url) return [imageToAnthropic(p.image_url.url)];
    return [];
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

export const STOP_TO_ANTHROPIC: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };
export const STOP_TO_OPENAI: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', pause_turn: 'stop' };

/** An OpenAI chat request as an Anthropic messages request. */
export function openAiRequestToAnthropic(body: Json, maxTokens: number): Json {
  const system: string[] = [];
  const messages: Array<{ role: string; content: AnthropicBlock[] }> = [];
  const push = (role: string, blocks: AnthropicBlock[]) => {
    const last = messages[messages.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const m of (body.messages as OpenAiMessage[]) ?? []) {
    if (m.role === 'system' || m.role === 'developer') {
      system.push(openAiPartsToAnthropic(m.content).map((b) => b.text ?? '').join(''));
    } else if (m.role === 'tool') {
      push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content: openAiPartsToAnthropic(m.content) }]);
    } else if (m.role === 'assistant') {
      const blocks = openAiPartsToAnthropic(m.content);
      for (const call of m.tool_calls ?? []) blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: safeJson(call.function.arguments) });
      push('assistant', blocks);
    } else {
      push('user', openAiPartsToAnthropic(m.content));
    }
  }
  const out: Json = { model: body.model, max_tokens: maxTokens, messages };
  if (system.length > 0) out.system = system.join('\n\n');
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (body.stop !== undefined) out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (Array.isArray(body.tools)) {
    out.tools = (body.tools as Array<{ function: { name: string; description?: string; parameters?: unknown } }>).map((t) => ({
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
    }));
  }
  return out;
}

/** An Anthropic messages response as an OpenAI chat completion. */
export function anthropicResponseToOpenAi(resp: Json, model: string): Json {
  const blocks = (resp.content as AnthropicBlock[]) ?? [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('');
  const calls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  const usage = (resp.usage as Record<string, number>) ?? {};
  const cacheRead = usage.cache_read_input_tokens ?? 0;
  const cacheWrite = usage.cache_creation_input_tokens ?? 0;
  const prompt = (usage.input_tokens ?? 0) + cacheRead + cacheWrite;
  const message: Json = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  return {
    id: `chatcmpl-${String(resp.id ?? '')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: STOP_TO_OPENAI[String(resp.stop_reason)] ?? 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: usage.output_tokens ?? 0, total_tokens: prompt + (usage.output_tokens ?? 0), prompt_tokens_details: { cached_tokens: cacheRead } },
  };
}

function anthropicContentToOpenAi(content: unknown): string | Json[] {
  if (typeof content === 'string') return content;
  const blocks = (content as AnthropicBlock[]) ?? [];
  if (blocks.every((b) => b.type === 'text')) return blocks.map((b) => b.text ?? '').join('');
  return blocks.flatMap((b) => (b.type === 'text' ? [{ type: 'text', text: b.text ?? '' }] : b.type === 'image' ? [imageToOpenAi(b)] : []));
}

/** An Anthropic messages request as an OpenAI chat request. */
export function anthropicRequestToOpenAi(body: Json, maxTokens: number): Json {
  const messages: Json[] = [];
  if (body.system !== undefined) messages.push({ role: 'system', content: anthropicContentToOpenAi(body.system) });
  for (const m of (body.messages as Array<{ role: string; content: unknown }>) ?? []) {
    const blocks: AnthropicBlock[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : ((m.content as AnthropicBlock[]) ?? []);
    if (m.role === 'assistant') {
      const text = blocks.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('');
      const calls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
      messages.push({ role: 'assistant', content: text === '' && calls.length > 0 ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
      continue;
    }
    for (const result of blocks.filter((b) => b.type === 'tool_result')) {
      // OpenAI tool messages carry text only: images of a tool result follow as a user message
      const content = anthropicContentToOpenAi(result.content ?? '');
      const parts = typeof content === 'string' ? [{ type: 'text', text: content }] : content;
      messages.push({ role: 'tool', tool_call_id: result.tool_use_id, content: parts.filter((p) => p.type === 'text').map((p) => String(p.text)).join('') });
      const images = parts.filter((p) => p.type === 'image_url');
      if (images.length > 0) messages.push({ role: 'user', content: images });
    }
    const rest = blocks.filter((b) => b.type !== 'tool_result');
    if (rest.length > 0) messages.push({ role: 'user', content: anthropicContentToOpenAi(rest) });
  }
  const out: Json = { model: body.model, messages, max_tokens: maxTokens };
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (body.stop_sequences !== undefined) out.stop = body.stop_sequences;
  if (Array.isArray(body.tools)) {
    out.tools = (body.tools as Array<{ name: string; description?: string; input_schema?: unknown }>).map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object', properties: {} } },
    }));
  }
  return out;
}

/** An OpenAI chat completion as an Anthropic messages response. */
export function openAiResponseToAnthropic(resp: Json, model: string): Json {
  const choice = ((resp.choices as Json[]) ?? [])[0] ?? {};
  const message = (choice.message as OpenAiMessage) ?? { role: 'assistant' };
  const content: AnthropicBlock[] = [];
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content });
  for (const call of message.tool_calls ?? []) content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: safeJson(call.function.arguments) });
  const usage = (resp.usage as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } }) ?? {};
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    id: `msg_${String(resp.id ?? '')}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: STOP_TO_ANTHROPIC[String(choice.finish_reason)] ?? 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: (usage.prompt_tokens ?? 0) - cached, output_tokens: usage.completion_tokens ?? 0, cache_read_input_tokens: cached, cache_creation_input_tokens: 0 },
  };
}
