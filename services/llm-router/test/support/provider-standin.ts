import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A model provider stand-in speaking the real wire formats: OpenAI chat completions and embeddings
 * (JSON, and SSE with `data: {...}` chunks, a usage chunk when asked, `data: [DONE]`) and
 * Anthropic messages (JSON, and SSE `message_start` … `message_stop`). Streams are written
 * in pieces split inside lines, words and UTF-8 characters. It records every request it
 * receives, so tests can assert what reached the provider (and what never did).
 *
 * The reply echoes the last user text (`echo: …`), which lets tests see that placeholders
 * went out and came back. Behaviour by model name:
 *   `fail-429` → 429 with retry-after; `fail-500` → 500; `cut-stream` → the stream stops
 *   after a few chunks (connection destroyed, no [DONE]); `slow` → 300 ms before answering;
 *   `tools` → after the text, a call of tool `get_weather` with `{"city": <the user text>}`
 *   (streamed in pieces), stop reason tool_calls / tool_use, and cached prompt tokens in the usage
 *   (OpenAI: 7 cached; Anthropic: 7 read and 3 written); `cached` → those cached tokens, no tool call;
 *   `call-tool` → as `tools`, and the JSON answer (OpenAI) carries that call too.
 * Run in-process (`startStandIn(port, requiredKey?)`) or as a process: `node provider-standin.js <port>`
 * (`STANDIN_API_KEY` requires that key; records at `GET /__records`, cleared by `DELETE /__records`).
 */
export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface StandIn {
  url: string;
  port: number;
  records: Recorded[];
  /** When set, a request without this key (`authorization: Bearer …` or `x-api-key`) is refused 401 in the provider's shape. */
  requiredKey?: string;
  close(): Promise<void>;
}

const UTF8_TAIL = 'naïve café — 数据 ✓';

function lastUserText(body: Record<string, unknown>): string {
  const messages = (body.messages as Array<{ role: string; content: unknown }>) ?? [];
  const user = [...messages].reverse().find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: { type?: string; text?: string }) => (p.type === 'text' ? (p.text ?? '') : '')).join('');
  return '';
}

/** Writes `text` as bytes in pieces of 1–7 bytes (so lines, words and UTF-8 characters are split). */
async function writeSplit(res: ServerResponse, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  let step = 0;
  while (at < bytes.length) {
    const size = [5, 1, 7, 2, 3][step++ % 5];
    res.write(bytes.subarray(at, at + size));
    at += size;
    if (step % 8 === 0) await new Promise((r) => setImmediate(r));
  }
}

function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [''];
}

async function openAi(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
  const model = String(body.model);
  const text = `echo: ${lastUserText(body)} ${UTF8_TAIL}`;
  const promptTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
  const completionTokens = words(text).length;
  const tools = model === 'tools' || model === 'call-tool';
  const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens, ...(tools || model === 'cached' ? { prompt_tokens_details: { cached_tokens: 7 } } : {}) };
  const args = JSON.stringify({ city: lastUserText(body) });
  const id = `chatcmpl-${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    const call = model === 'call-tool' ? { tool_calls: [{ id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: args } }] } : {};
    res.end(JSON.stringify({ id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, ...call }, logprobs: null, finish_reason: model === 'call-tool' ? 'tool_calls' : 'stop' }], usage }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  let out = chunk({ role: 'assistant', content: '' });
  const parts = words(text);
  for (let i = 0; i < parts.length; i++) {
    out += chunk({ content: parts[i] });
    if (model === 'cut-stream' && i === 2) {
      await writeSplit(res, out);
      res.socket?.destroy();
      return;
    }
  }
  if (tools) {
    out += chunk({ tool_calls: [{ index: 0, id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '' } }] });
    for (let at = 0; at < args.length; at += 5) out += chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(at, at + 5) } }] });
  }
  out += chunk({}, tools ? 'tool_calls' : 'stop');
  const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  if (includeUsage) out += `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`;
  out += 'data: [DONE]\n\n';
  await writeSplit(res, out);
  res.end();
}

async function anthropic(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
  const model = String(body.model);
  const text = `echo: ${lastUserText(body)} ${UTF8_TAIL}`;
  const inputTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
  const outputTokens = words(text).length;
  const id = `msg_${Date.now().toString(36)}`;
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id, type: 'message', role: 'assistant', model, content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (name: string, data: object) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
  const tools = model === 'tools';
  const cache = tools || model === 'cached' ? { cache_read_input_tokens: 7, cache_creation_input_tokens: 3 } : {};
  let out = event('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1, ...cache } } });
  out += event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  out += event('ping', {});
  for (const part of words(text)) out += event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: part } });
  out += event('content_block_stop', { index: 0 });
  if (tools) {
    const args = JSON.stringify({ city: lastUserText(body) });
    out += event('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_w1', name: 'get_weather', input: {} } });
    for (let at = 0; at < args.length; at += 5) out += event('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: args.slice(at, at + 5) } });
    out += event('content_block_stop', { index: 1 });
  }
  out += event('message_delta', { delta: { stop_reason: tools ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens } });
  out += event('message_stop', {});
  await writeSplit(res, out);
  res.end();
}

/** OpenAI embeddings: one small deterministic vector per input, usage by characters. */
function embeddings(body: Record<string, unknown>, res: ServerResponse): void {
  const inputs = ([] as unknown[]).concat(body.input);
  const data = inputs.map((input, index) => ({ object: 'embedding', index, embedding: [String(input).length / 100, 0.5, -0.25] }));
  const tokens = inputs.reduce<number>((n, input) => n + Math.ceil(String(input).length / 4), 0);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
}

function models(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'list', data: [{ id: 'standin-model', object: 'model', created: 0, owned_by: 'standin' }] }));
}

function keyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  return bearer ? bearer[1] : (req.headers['x-api-key'] as string | undefined);
}

async function handle(req: IncomingMessage, res: ServerResponse, records: Recorded[], requiredKey: () => string | undefined): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/__records') {
    if (req.method === 'DELETE') records.length = 0;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(records));
    return;
  }
  records.push({ method: req.method ?? 'GET', path, headers: { ...req.headers }, body: raw });
  const key = requiredKey();
  if (key !== undefined && keyOf(req) !== key) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(path.endsWith('/messages') ? JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }) : JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
    return;
  }
  if (req.method === 'GET' && path.endsWith('/models')) return models(res);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'invalid JSON', type: 'invalid_request_error', param: null, code: null } }));
    return;
  }
  const model = String(body.model);
  if (model === 'slow') await new Promise((r) => setTimeout(r, 300));
  if (model === 'fail-429') {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { message: 'rate limited', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }));
    return;
  }
  if (model === 'fail-500') {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: null } }));
    return;
  }
  if (path.endsWith('/embeddings')) return embeddings(body, res);
  if (path.endsWith('/chat/completions')) return openAi(body, res);
  if (path.endsWith('/messages')) return anthropic(body, res);
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }));
}

export async function startStandIn(port = 0, requiredKey?: string): Promise<StandIn> {
  const records: Recorded[] = [];
  const standIn = { requiredKey } as StandIn;
  const server: Server = createServer((req, res) => {
    handle(req, res, records, () => standIn.requiredKey).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return Object.assign(standIn, {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    records,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

// run as a process (`node provider-standin.ts <port>`: Node strips the types; `npm start` does so)
if (/provider-standin\.[jt]s$/.test(process.argv[1] ?? '')) {
  startStandIn(Number(process.argv[2] ?? 0), process.env.STANDIN_API_KEY || undefined).then((s) => process.stdout.write(`${s.url}\n`));
}
