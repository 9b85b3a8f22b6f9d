import { z } from 'zod';
import { CLASSIFICATIONS, type Classification } from './routing';

/** Messages per request, and tokens a caller may ask for at most (the router clamps further per model). */
const MAX_MESSAGES = 4096;
const maxTokens = z.number().int().min(1).max(10_000_000);

/**
 * OpenAI chat completion request: what the router reads is checked, the rest (tools,
 * response_format, temperature…) passes through to OpenAI-compatible providers as sent.
 */
export const chatCompletionSchema = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z
    .array(z.looseObject({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']) }))
    .min(1)
    .max(MAX_MESSAGES),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: maxTokens.nullable().optional(),
  max_completion_tokens: maxTokens.nullable().optional(),
  n: z.literal(1, 'only one choice per request (n = 1): the budget is reserved for one').nullable().optional(),
});

/** Anthropic messages request (system prompt, content blocks, tools pass through). */
export const messagesSchema = z.looseObject({
  model: z.string().min(1).max(200),
  max_tokens: maxTokens,
  messages: z
    .array(z.looseObject({ role: z.enum(['user', 'assistant']) }))
    .min(1)
    .max(MAX_MESSAGES),
  stream: z.boolean().optional(),
});

/** One embeddings input at most (characters), and inputs per request (OpenAI's limit). */
const MAX_EMBEDDING_INPUT = 1_000_000;
const MAX_EMBEDDING_INPUTS = 2048;
const embeddingText = z.string().min(1, 'must not be empty').max(MAX_EMBEDDING_INPUT);

/**
 * OpenAI embeddings request. Only text: token arrays cannot be checked for personal data,
 * so they are refused (fail-closed). The rest (`encoding_format`, `dimensions`, `user`) passes through.
 */
export const embeddingsSchema = z.looseObject({
  model: z.string().min(1).max(200),
  input: z.union([embeddingText, z.array(embeddingText).min(1).max(MAX_EMBEDDING_INPUTS)], { error: 'must be a string or an array of strings (token arrays cannot be checked for personal data)' }),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).max(100_000).optional(),
});

/** `X-Palisade-Classification`: what the caller declares (the router may raise it, never lowers it). */
export const classificationSchema = z.enum(CLASSIFICATIONS as [Classification, ...Classification[]]).optional();
