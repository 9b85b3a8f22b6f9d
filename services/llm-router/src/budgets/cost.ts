import type { ModelDefinition } from '../catalog/catalog.events';

/** Tokens an image may cost at most (OpenAI's high-detail tiles, Anthropic's 1,600-token cap, with margin). */
export const IMAGE_TOKEN_BOUND = 2_000;
/** Per-message framing tokens (role, separators) at most. */
export const MESSAGE_OVERHEAD = 8;

/**
 * An upper bound of a request's input tokens without a tokenizer: every token of the
 * byte-level BPEs the providers use covers at least one byte of UTF-8, so the bytes of
 * the text are a bound; images are counted at their bound, not their URL's length.
 */
export function inputTokenBound(body: { messages?: unknown; system?: unknown; tools?: unknown }): number {
  let images = 0;
  const text = JSON.stringify([body.system ?? null, body.messages ?? [], body.tools ?? null], (key, value: unknown) => {
    if (key === 'image_url' || (key === 'source' && value && typeof value === 'object')) {
      images++;
      return null;
    }
    return value;
  });
  const messages = Array.isArray(body.messages) ? body.messages.length : 0;
  return Buffer.byteLength(text, 'utf8') + messages * MESSAGE_OVERHEAD + images * IMAGE_TOKEN_BOUND;
}

/** Micro-USD for tokens at a price per million tokens, rounded up (integers only). */
export function micros(tokens: number, microsPerMTok: number): number {
  return Math.ceil((tokens * microsPerMTok) / 1_000_000);
}

/** The worst case over every model the request may reach: all its input bound and `maxTokens` output at that model's prices. */
export function worstCaseMicros(models: readonly ModelDefinition[], inputBound: number, maxTokens: number): number {
  return Math.max(0, ...models.map((m) => micros(inputBound, m.inputMicrosPerMTok) + micros(maxTokens, m.outputMicrosPerMTok)));
}

export function costMicros(model: ModelDefinition, usage: { inputTokens: number; outputTokens: number }): number {
  return micros(usage.inputTokens, model.inputMicrosPerMTok) + micros(usage.outputTokens, model.outputMicrosPerMTok);
}

/**
 * The output tokens the router allows: what the caller asked (or the default), never more
 * than the smallest output limit of the models it may reach, at least 1.
 */
export function clampMaxTokens(requested: number | undefined, fallback: number, models: readonly ModelDefinition[]): number {
  const limit = Math.min(...models.map((m) => m.maxOutputTokens));
  return Math.max(1, Math.min(requested ?? fallback, limit));
}
