import { readFileSync } from 'node:fs';
import { PalisadeError } from '@palisade/contracts';
import { z } from 'zod';
import type { EgressRule } from './egress.rules';

const host = z.string().regex(/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?$|^[0-9a-fA-F:.]+$/, 'must be a host name, *.suffix or an IP');
const ruleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be a rule id'),
  host,
  scheme: z.enum(['https', 'http']).optional(),
  ports: z.array(z.number().int().min(1).max(65535)).min(1).optional(),
  methods: z.array(z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case method')).optional(),
  pathPrefixes: z.array(z.string().startsWith('/')).optional(),
  addresses: z.array(z.union([z.ipv4(), z.ipv6()])).optional(),
  upstreamCaPem: z.string().includes('BEGIN CERTIFICATE').optional(),
  intercept: z.boolean().optional(),
  inject: z
    .strictObject({
      secretId: z.uuid(),
      tool: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/),
      as: z.discriminatedUnion('type', [
        z.strictObject({ type: z.literal('header'), name: z.string().regex(/^[A-Za-z0-9-]{1,64}$/), prefix: z.string().max(32).optional() }),
        z.strictObject({ type: z.literal('basic'), username: z.string().min(1).max(128) }),
      ]),
    })
    .optional(),
});

/** Rules per tenant (`"*"`: every tenant's, after its own). */
export const egressRulesSchema = z.record(z.string(), z.array(ruleSchema));
export type EgressRulesByTenant = Record<string, EgressRule[]>;

/** Parses the rules document, naming the bad field. */
export function parseEgressRules(document: unknown): EgressRulesByTenant {
  const parsed = egressRulesSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PalisadeError('validation', `egress rules: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data as EgressRulesByTenant;
}

/** SANDBOX_EGRESS_RULES_FILE: a JSON document of rules per tenant; without it, every tenant is denied everything. */
export function loadEgressRules(file: string | undefined): EgressRulesByTenant {
  if (!file) return {};
  return parseEgressRules(JSON.parse(readFileSync(file, 'utf8')) as unknown);
}

export function rulesFor(rules: EgressRulesByTenant, tenantId: string): EgressRule[] {
  return [...(rules[tenantId] ?? []), ...(rules['*'] ?? [])];
}
