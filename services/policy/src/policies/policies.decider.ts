import { PalisadeError, validationError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import { conditionProblems, type Definitions } from '../model/condition';
import { NAME_PATTERN, SUBJECT_PATTERN, type Rule } from '../model/policy.model';
import type { PolicyDocumentEvent } from '../policyset/policyset.events';

/** Largest rule set of one policy document (its event stays well under the bus limit). */
export const MAX_RULES_PER_POLICY = 500;

/** A policy document: its current rules and every earlier version, so it can be rolled back. */
export interface PolicyDocumentState {
  version: number;
  /** undefined: never published, or withdrawn. */
  rules: Rule[] | undefined;
  history: Map<number, Rule[] | undefined>;
}

export type PolicyDocumentCommand =
  /** `definitions` are the tenant's attribute definitions (outside data, passed in). */
  | Command<'publish', { policyId: string; rules: Rule[]; definitions: Definitions }>
  | Command<'rollback', { policyId: string; toVersion: number }>
  | Command<'withdraw', { policyId: string }>;

export const policyDocumentDecider: Decider<PolicyDocumentState, PolicyDocumentCommand, PolicyDocumentEvent> = {
  initialState: () => ({ version: 0, rules: undefined, history: new Map() }),

  decide(command, state) {
    const version = state.version + 1;
    switch (command.type) {
      case 'publish': {
        const { policyId, rules, definitions } = command.data;
        const problems = ruleProblems(rules, definitions);
        if (problems.length) throw validationError(problems[0], problems);
        return [{ type: 'policy.policy.published', data: { policyId, version, rules: rules.map(normalize) } }];
      }
      case 'rollback': {
        const { policyId, toVersion } = command.data;
        if (state.version === 0) throw new PalisadeError('not_found', `policy ${policyId} not found`);
        if (!state.history.has(toVersion)) throw validationError(`toVersion: policy ${policyId} has no version ${toVersion} (1..${state.version})`);
        const rules = state.history.get(toVersion);
        if (!rules) throw validationError(`toVersion: version ${toVersion} of policy ${policyId} is a withdrawal; withdraw instead`);
        if (toVersion === state.version) throw validationError(`toVersion: ${toVersion} is the current version`);
        return [{ type: 'policy.policy.rolled-back', data: { policyId, version, toVersion, rules } }];
      }
      case 'withdraw': {
        if (!state.rules) throw new PalisadeError('not_found', `policy ${command.data.policyId} not found`);
        return [{ type: 'policy.policy.withdrawn', data: { policyId: command.data.policyId, version } }];
      }
    }
  },

  evolve(state, event) {
    const rules = event.type === 'policy.policy.withdrawn' ? undefined : event.data.rules;
    state.history.set(event.data.version, rules);
    return { version: event.data.version, rules, history: state.history };
  },
};

function normalize(rule: Rule): Rule {
  const out: Rule = { id: rule.id, effect: rule.effect, subject: rule.subject, resource: rule.resource, action: rule.action };
  if (rule.when) out.when = rule.when;
  if (rule.fields) out.fields = [...rule.fields];
  return out;
}

/** Each problem names its place, e.g. `rules.3.when.all.0.attr: attribute subject.grade is not defined`. */
export function ruleProblems(rules: readonly Rule[], definitions: Definitions): string[] {
  if (rules.length > MAX_RULES_PER_POLICY) return [`rules: at most ${MAX_RULES_PER_POLICY} rules per policy (got ${rules.length})`];
  const problems: string[] = [];
  const ids = new Set<string>();
  rules.forEach((rule, i) => {
    const at = `rules.${i}`;
    if (!NAME_PATTERN.test(rule.id)) problems.push(`${at}.id: must be a name of letters, digits, _ . : -`);
    else if (ids.has(rule.id)) problems.push(`${at}.id: ${rule.id} is used twice`);
    ids.add(rule.id);
    if (!SUBJECT_PATTERN.test(rule.subject)) problems.push(`${at}.subject: must be role:<name>, user:<id>, agent:<id> or service:<name>`);
    if (rule.resource !== '*' && !NAME_PATTERN.test(rule.resource)) problems.push(`${at}.resource: must be a resource type or *`);
    if (rule.action !== '*' && !NAME_PATTERN.test(rule.action)) problems.push(`${at}.action: must be an action or *`);
    if (rule.effect === 'mask' && !rule.fields?.length) problems.push(`${at}.fields: a mask rule names the fields it masks`);
    if (rule.effect === 'allow' && rule.fields) problems.push(`${at}.fields: an allow rule has no fields (use deny or mask)`);
    if (rule.when) problems.push(...conditionProblems(rule.when, definitions, `${at}.when`));
  });
  return problems;
}
