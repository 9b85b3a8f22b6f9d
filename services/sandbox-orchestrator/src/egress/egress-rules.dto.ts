import { z } from 'zod';
import { principalIdSchema, sessionIdSchema } from '../sessions/sessions.dto';
import type { EgressRule } from './egress.rules';

/** Most rules in one rule set. */
export const MAX_RULES = 200;

const ruleId = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be a rule id: lowercase letters, digits, _ . - (at most 64)');
const host = z
  .string()
  .max(253)
  .regex(/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$|^[0-9a-fA-F:.]+$/, 'must be a host name, *.suffix or an IP')
  .transform((h) => h.toLowerCase().replace(/\.$/, ''));
const headerName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a header name');
const queryName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a query parameter name: letters, digits, _ . - (at most 64)');

export const egressRuleSchema = z.strictObject({
  id: ruleId,
  host,
  scheme: z.enum(['https', 'http']).optional(),
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(32).optional(),
  methods: z.array(z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case method')).min(1).max(16).optional(),
  pathPrefixes: z.array(z.string().startsWith('/', 'must start with /').max(512).regex(/^[^\s?#]*$/, 'must be a path without query or fragment')).min(1).max(32).optional(),
  addresses: z.array(z.union([z.ipv4(), z.ipv6()])).min(1).max(16).optional(),
  upstreamCaPem: z.string().max(16_384).includes('BEGIN CERTIFICATE', { message: 'must be a PEM certificate' }).optional(),
  intercept: z.boolean().optional(),
  websocket: z.boolean().optional(),
  inject: z
    .strictObject({
      secretId: z.uuid('must be a vault secret id (UUID)'),
      tool: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be a tool name'),
      as: z.discriminatedUnion('type', [
        z.strictObject({ type: z.literal('header'), name: headerName, prefix: z.string().max(32).regex(/^[\x20-\x7e]*$/, 'must be printable ASCII').optional() }),
        z.strictObject({ type: z.literal('basic'), username: z.string().min(1).max(128).regex(/^[^:\p{Cc}]+$/u, 'must not contain : or control characters') }),
        z.strictObject({ type: z.literal('query'), name: queryName }),
      ]),
    })
    .optional(),
}).refine((rule) => !(rule.websocket && rule.inject), { path: ['websocket'], message: 'a WebSocket rule injects no credential (frames cannot be scrubbed)' });

export const egressRulesBodySchema = z.strictObject({
  rules: z
    .array(egressRuleSchema)
    .max(MAX_RULES)
    .refine((rules) => new Set(rules.map((r) => r.id)).size === rules.length, 'rule ids must be unique in a rule set'),
});

/** A rule set's scope: the tenant's, an agent's (narrows the tenant's for its executions), a session's (narrows for its sandboxes). */
export const egressScopeSchema = z
  .string()
  .refine(
    (s) => s === 'tenant' || (s.startsWith('agent:') && principalIdSchema.safeParse(s.slice(6)).success) || (s.startsWith('session:') && sessionIdSchema.safeParse(s.slice(8)).success),
    'must be tenant, agent:<agent id> or session:<session id>',
  )
  .transform((s) => s as EgressScope);
export type EgressScope = 'tenant' | `agent:${string}` | `session:${string}`;

export type EgressRulesBody = { rules: EgressRule[] };
