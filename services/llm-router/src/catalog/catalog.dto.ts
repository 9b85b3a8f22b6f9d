import { z } from 'zod';
import { CAPABILITIES, COMPLIANCE_CLASSES, PROVIDER_KINDS, type Capability, type ComplianceClass, type ProviderKind } from './catalog.events';

/** A provider's, model's or route's id: what callers put in `model`. */
export const catalogIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'must be letters, digits, . _ : / - (at most 128)');

const money = z.number().int().min(0).max(1_000_000_000_000);

export const providerSchema = z.strictObject({
  kind: z.enum(PROVIDER_KINDS as [ProviderKind, ...ProviderKind[]]),
  baseUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    // zod runs refinements even after a failed check: a value `new URL` refuses is simply invalid here, never a throw.
    .refine((u) => URL.canParse(u) && !/[?#]/.test(u) && !new URL(u).username && !new URL(u).password, 'must be an http(s) URL without credentials, query or fragment'),
  compliance: z.enum(COMPLIANCE_CLASSES as [ComplianceClass, ...ComplianceClass[]]),
  /** Write-only: the router stores it in the vault and keeps only the secret's id; never answered back. */
  apiKey: z
    .string()
    .min(1)
    .max(8192)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional()
    .meta({ writeOnly: true, description: "the provider's API key: stored in the credential service's vault, never answered back (the answer names its apiKeySecretId)" }),
  /** A key the router already keeps in the vault for this tenant (another provider's `apiKeySecretId`). */
  apiKeySecretId: z.uuid('must be a secret id of the credential service').optional(),
}).refine((p) => p.apiKey === undefined || p.apiKeySecretId === undefined, { message: 'give either apiKey or apiKeySecretId', path: ['apiKey'] });

export const modelSchema = z.strictObject({
  providerId: catalogIdSchema,
  upstreamModel: z.string().min(1).max(200),
  contextWindow: z.number().int().min(1).max(100_000_000),
  maxOutputTokens: z.number().int().min(1).max(10_000_000),
  inputMicrosPerMTok: money,
  outputMicrosPerMTok: money,
  /** What the model can do besides text (`tools`, `images`): a request using one is never routed to a model that declares it cannot. */
  capabilities: z
    .array(z.enum(CAPABILITIES as [Capability, ...Capability[]]))
    .max(CAPABILITIES.length)
    .refine((c) => new Set(c).size === c.length, 'must not repeat a capability')
    .optional(),
});

export const routeSchema = z
  .strictObject({
    candidates: z.array(catalogIdSchema).min(1).max(8),
    weights: z.array(z.number().int().min(0).max(1000)).min(1).max(8).optional(),
  })
  .refine((r) => r.weights === undefined || (r.weights.length === r.candidates.length && r.weights.some((w) => w > 0)), { message: 'one weight per candidate, at least one above 0', path: ['weights'] });

const limits = z.strictObject({
  requestsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
  tokensPerMinute: z.number().int().min(1).max(10_000_000_000).optional(),
});
const perMinute = limits.optional();
/**
 * Agents and API keys whose limits differ from the tenant's defaults: at most this many of
 * each, so the settings' event stays well within an event's size (both full, with the
 * longest ids and limits: ~200 KB of MAX_EVENT_BYTES' 256).
 */
export const MAX_NAMED_LIMITS = 500;
const named = (id: z.ZodString, what: string) =>
  z
    .record(id, limits)
    .refine((m) => Object.keys(m).length <= MAX_NAMED_LIMITS, `at most ${MAX_NAMED_LIMITS} ${what}`)
    .optional();
// an agent's id as the router counts it: auth's agent id, or `user:<id>` for a person calling directly
const agentKey = z.string().regex(/^(user:)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'an agent id, or user:<id> for a person (letters, digits, . _ -, at most 128)');
const apiKeyId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'an API key id (letters, digits, . _ -, at most 128)');

export const settingsSchema = z.strictObject({
  zeroRetention: z.boolean(),
  rateLimits: z.strictObject({ perAgent: perMinute, perKey: perMinute, agents: named(agentKey, 'agents'), keys: named(apiKeyId, 'API keys') }).optional(),
});
