import { PalisadeError } from '@palisade/contracts';
import type { CatalogState } from '../catalog/catalog.decider';
import type { Capability, ComplianceClass, ModelDefinition, ProviderDefinition } from '../catalog/catalog.events';
import type { EntityType } from '../guards/pii.detector';

/** How sensitive a request is; declared by the caller, raised by what the guards find, never lowered. */
export type Classification = 'public' | 'internal' | 'confidential' | 'restricted';
export const CLASSIFICATIONS: readonly Classification[] = ['public', 'internal', 'confidential', 'restricted'];
const RANK: Record<Classification, number> = { public: 0, internal: 1, confidential: 2, restricted: 3 };

/** Most attempts per request, fallbacks included (no loops). */
export const MAX_ATTEMPTS = 3;

/** What a detected entity makes the request at least: personal data is confidential, a secret restricted. */
const FLOOR_OF: Record<EntityType, Classification> = {
  email: 'confidential',
  phone: 'confidential',
  ip: 'confidential',
  card: 'confidential',
  iban: 'confidential',
  us_ssn: 'confidential',
  cn_resident_id: 'confidential',
  uk_nino: 'confidential',
  date_of_birth: 'confidential',
  secret: 'restricted',
};

/** The higher of two classes. */
export function higher(a: Classification, b: Classification): Classification {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * A tenant's rule raising the class of the requests it matches (guard policy
 * `classificationRules`): every field given must match — `team` one of the caller's teams,
 * `agent` the calling agent, `model` the model or route the request names — and at least
 * one is given.
 */
export interface ClassificationRule {
  team?: string;
  agent?: string;
  model?: string;
  atLeast: Exclude<Classification, 'public'>;
}

/** Who is asking for what, as the rules see it. */
export interface RuleSubject {
  teams: readonly string[];
  /** The calling agent; absent for a person calling directly. */
  agentId?: string;
  /** The model or route named by the request. */
  model: string;
}

export function ruleMatches(rule: ClassificationRule, subject: RuleSubject): boolean {
  return (
    (rule.team === undefined || subject.teams.includes(rule.team)) &&
    (rule.agent === undefined || rule.agent === subject.agentId) &&
    (rule.model === undefined || rule.model === subject.model)
  );
}

/**
 * The declared class raised by every matching rule (never lowered), and the positions of
 * the rules that raised it (each matching rule above the declared class), for the audit event.
 */
export function raisedByRules(declared: Classification, rules: readonly ClassificationRule[], subject: RuleSubject): { classification: Classification; raisedBy: number[] } {
  const raisedBy = rules.flatMap((rule, i) => (ruleMatches(rule, subject) && RANK[rule.atLeast] > RANK[declared] ? [i] : []));
  return { classification: raisedBy.reduce<Classification>((c, i) => higher(c, rules[i].atLeast), declared), raisedBy };
}

/** The declared class, raised by every entity found (never lowered). */
export function classify(declared: Classification, found: readonly EntityType[]): Classification {
  return found.reduce<Classification>((c, type) => higher(c, FLOOR_OF[type]), declared);
}

/** The highest class a provider of this compliance class may receive: confidential and above go only to private providers. */
export function ceilingOf(compliance: ComplianceClass): Classification {
  return compliance === 'private' ? 'restricted' : 'internal';
}

export function permits(compliance: ComplianceClass, classification: Classification): boolean {
  return RANK[classification] <= RANK[ceilingOf(compliance)];
}

export interface Candidate {
  model: ModelDefinition;
  provider: ProviderDefinition;
}

const COMPLIANCE_RANK: Record<ComplianceClass, number> = { external: 0, private: 1 };

/** Whether a model can serve a request that uses these capabilities (a model that declares none is taken as able). */
export function capable(model: ModelDefinition, uses: readonly Capability[]): boolean {
  return model.capabilities === undefined || uses.every((c) => model.capabilities!.includes(c));
}

/** The capabilities a request body uses (either API): tools offered, images anywhere in its messages, system or tool results. */
export function capabilitiesOf(body: Record<string, unknown>): Capability[] {
  const uses: Capability[] = [];
  if (Array.isArray(body.tools) && body.tools.length > 0) uses.push('tools');
  const text = JSON.stringify([body.system ?? null, body.messages ?? null]);
  if (/"type":"(image_url|image)"/.test(text)) uses.push('images');
  return uses;
}

/**
 * The candidates a request may be sent to, in order, at most `MAX_ATTEMPTS`:
 * `model` names a route (its candidates) or a model. Only providers that may receive the
 * request's class are kept, and only models able to do what the request uses (tools,
 * images); a fallback is never of a lower compliance class than the first candidate, nor
 * a model with a smaller context window. No permitted candidate: the request fails
 * (`forbidden` for the class, `validation` for capabilities), it is never sent where it
 * may not go.
 */
export function plan(catalog: CatalogState, model: string, classification: Classification, uses: readonly Capability[] = [], random: () => number = Math.random): Candidate[] {
  const route = Object.hasOwn(catalog.routes, model) ? catalog.routes[model] : undefined;
  const ids = route ? route.candidates : Object.hasOwn(catalog.models, model) ? [model] : undefined;
  if (!ids) throw new PalisadeError('not_found', 'model: no such model or route');
  const all = ids.flatMap((id, i) => {
    const m = catalog.models[id];
    const p = m && catalog.providers[m.providerId];
    return m && p ? [{ model: m, provider: p, weight: route?.weights?.[i] }] : [];
  });
  const permitted = all.filter((c) => permits(c.provider.compliance, classification));
  if (permitted.length === 0) {
    throw new PalisadeError('forbidden', `no provider of model ${model} may receive ${classification} data: refused, nothing was sent`, { classification });
  }
  const able = permitted.filter((c) => capable(c.model, uses));
  if (able.length === 0) throw new PalisadeError('validation', `no permitted model of ${model} can serve a request that uses ${uses.join(' and ')}`);
  const first = drawn(able, random);
  const fallbacks = able
    .filter((c) => c !== first)
    .filter((c) => COMPLIANCE_RANK[c.provider.compliance] >= COMPLIANCE_RANK[first.provider.compliance] && c.model.contextWindow >= first.model.contextWindow);
  return [first, ...fallbacks].slice(0, MAX_ATTEMPTS).map(({ model: m, provider }) => ({ model: m, provider }));
}

/** The first candidate: by weight among those with one above 0 (a route with weights), else the first in order. */
function drawn<T extends { weight?: number }>(candidates: readonly T[], random: () => number): T {
  const weighted = candidates.filter((c) => (c.weight ?? 0) > 0);
  const total = weighted.reduce((sum, c) => sum + c.weight!, 0);
  if (total === 0) return candidates[0];
  let at = random() * total;
  for (const c of weighted) {
    at -= c.weight!;
    if (at < 0) return c;
  }
  return weighted[weighted.length - 1];
}

/** The sequence of attempts: the plan, then its first candidate again while attempts remain (one candidate: up to three tries). */
export function attemptsOf(candidates: readonly Candidate[]): Candidate[] {
  const attempts = [...candidates];
  while (attempts.length < MAX_ATTEMPTS && candidates.length > 0) attempts.push(candidates[attempts.length % candidates.length]);
  return attempts.slice(0, MAX_ATTEMPTS);
}
