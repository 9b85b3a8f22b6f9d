import { PalisadeError, validationError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import { definitionKey } from '../model/condition';
import {
  ATTRIBUTE_NAME,
  NAME_PATTERN,
  SUBJECT_PATTERN,
  type Assignment,
  type AttributeDefinition,
  type AttributeValue,
  type Attributes,
} from '../model/policy.model';
import type { PolicySetEvent } from './policyset.events';

/** A tenant's policy set as its commands need it. */
export interface PolicySetState {
  roles: Map<string, string[]>;
  /** `subject\u0000role` */
  assignments: Set<string>;
  definitions: Map<string, AttributeDefinition>;
}

export type PolicySetCommand =
  | Command<'defineRole', { role: string; inherits: string[] }>
  | Command<'removeRole', { role: string }>
  | Command<'grant', { assignments: Assignment[] }>
  | Command<'revoke', { assignments: Assignment[] }>
  | Command<'defineAttribute', { definition: AttributeDefinition }>
  | Command<'setSubjectAttributes', { subject: string; attributes: Attributes }>
  | Command<'setToolAllowlist', { agent?: string; tools: string[] }>
  | Command<'setCriticalActions', { actions: string[] }>;

export const MAX_INHERITS = 32;
const MAX_HIERARCHY_DEPTH = 9; // Casbin's role manager follows 10 levels

const key = (a: Assignment) => `${a.subject}\u0000${a.role}`;

export const policySetDecider: Decider<PolicySetState, PolicySetCommand, PolicySetEvent> = {
  initialState: () => ({ roles: new Map(), assignments: new Set(), definitions: new Map() }),

  decide(command, state) {
    switch (command.type) {
      case 'defineRole': {
        const { role, inherits } = command.data;
        if (!NAME_PATTERN.test(role)) throw validationError('role: must be a name of letters, digits, _ . : -');
        for (const [i, parent] of inherits.entries()) {
          if (!state.roles.has(parent)) throw validationError(`inherits.${i}: role ${parent} is not defined`);
          if (parent === role || reaches(state.roles, parent, role)) throw validationError(`inherits.${i}: inheriting ${parent} would make a cycle`);
        }
        const depth = 1 + Math.max(0, ...inherits.map((p) => depthOf(state.roles, p)));
        if (depth > MAX_HIERARCHY_DEPTH) throw validationError(`inherits: the hierarchy would be ${depth} levels deep (at most ${MAX_HIERARCHY_DEPTH})`);
        const current = state.roles.get(role);
        if (current && sameSet(current, inherits)) return [];
        return [{ type: 'policy.role.defined', data: { role, inherits: [...new Set(inherits)] } }];
      }
      case 'removeRole': {
        const { role } = command.data;
        if (!state.roles.has(role)) throw new PalisadeError('not_found', `role ${role} not found`);
        const child = [...state.roles].find(([, parents]) => parents.includes(role));
        if (child) throw new PalisadeError('illegal_state', `role ${role} is inherited by ${child[0]}`);
        const holder = [...state.assignments].find((a) => a.endsWith(`\u0000${role}`));
        if (holder) throw new PalisadeError('illegal_state', `role ${role} is still assigned to ${holder.split('\u0000')[0]}`);
        return [{ type: 'policy.role.removed', data: { role } }];
      }
      case 'grant': {
        command.data.assignments.forEach((a, i) => {
          if (!SUBJECT_PATTERN.test(a.subject) || a.subject.startsWith('role:')) throw validationError(`assignments.${i}.subject: must be user:<id>, agent:<id> or service:<name>`);
          if (!state.roles.has(a.role)) throw validationError(`assignments.${i}.role: role ${a.role} is not defined`);
        });
        const fresh = dedupe(command.data.assignments).filter((a) => !state.assignments.has(key(a)));
        return fresh.length ? [{ type: 'policy.assignment.granted', data: { assignments: fresh } }] : [];
      }
      case 'revoke': {
        const held = dedupe(command.data.assignments).filter((a) => state.assignments.has(key(a)));
        return held.length ? [{ type: 'policy.assignment.revoked', data: { assignments: held } }] : [];
      }
      case 'defineAttribute': {
        const d = command.data.definition;
        if (!ATTRIBUTE_NAME.test(d.name) || d.name === 'id') throw validationError('name: must be a camelCase attribute name (not "id")');
        if (d.type === 'level') {
          if (!d.levels || d.levels.length < 2) throw validationError('levels: a level attribute needs at least two ordered levels');
          if (new Set(d.levels).size !== d.levels.length) throw validationError('levels: must be distinct');
        } else if (d.levels) throw validationError('levels: only a level attribute has levels');
        const definition: AttributeDefinition = { name: d.name, target: d.target, type: d.type, ...(d.levels ? { levels: [...d.levels] } : {}) };
        const current = state.definitions.get(definitionKey(d.target, d.name));
        if (current && JSON.stringify(current) === JSON.stringify(definition)) return [];
        return [{ type: 'policy.attribute.defined', data: { definition } }];
      }
      case 'setSubjectAttributes': {
        const { subject, attributes } = command.data;
        if (!SUBJECT_PATTERN.test(subject) || subject.startsWith('role:')) throw validationError('subject: must be user:<id>, agent:<id> or service:<name>');
        for (const [name, value] of Object.entries(attributes)) {
          const def = state.definitions.get(definitionKey('subject', name));
          if (!def) throw validationError(`attributes.${name}: subject attribute ${name} is not defined`);
          const problem = valueProblem(def, value);
          if (problem) throw validationError(`attributes.${name}: ${problem}`);
        }
        return [{ type: 'policy.subject-attributes.set', data: { subject, attributes } }];
      }
      case 'setToolAllowlist': {
        const { agent, tools } = command.data;
        if (agent !== undefined && !NAME_PATTERN.test(agent)) throw validationError('agent: must be an agent id');
        tools.forEach((t, i) => {
          if (!NAME_PATTERN.test(t)) throw validationError(`tools.${i}: must be a tool name`);
        });
        return [{ type: 'policy.tool-allowlist.set', data: { ...(agent !== undefined ? { agent } : {}), tools: [...new Set(tools)].sort() } }];
      }
      case 'setCriticalActions': {
        command.data.actions.forEach((a, i) => {
          if (!NAME_PATTERN.test(a)) throw validationError(`actions.${i}: must be an action name`);
        });
        return [{ type: 'policy.critical-actions.set', data: { actions: [...new Set(command.data.actions)].sort() } }];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'policy.role.defined':
        state.roles.set(event.data.role, event.data.inherits);
        break;
      case 'policy.role.removed':
        state.roles.delete(event.data.role);
        break;
      case 'policy.assignment.granted':
        for (const a of event.data.assignments) state.assignments.add(key(a));
        break;
      case 'policy.assignment.revoked':
        for (const a of event.data.assignments) state.assignments.delete(key(a));
        break;
      case 'policy.attribute.defined':
        state.definitions.set(definitionKey(event.data.definition.target, event.data.definition.name), event.data.definition);
        break;
      default:
        break;
    }
    return state;
  },
};

/** Whether `from` inherits `target`, directly or not. */
function reaches(roles: ReadonlyMap<string, string[]>, from: string, target: string, seen = new Set<string>()): boolean {
  if (from === target) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  return (roles.get(from) ?? []).some((p) => reaches(roles, p, target, seen));
}

function depthOf(roles: ReadonlyMap<string, string[]>, role: string): number {
  const parents = roles.get(role) ?? [];
  return 1 + (parents.length ? Math.max(...parents.map((p) => depthOf(roles, p))) : 0);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function dedupe(list: readonly Assignment[]): Assignment[] {
  const seen = new Map<string, Assignment>();
  for (const a of list) seen.set(key(a), { subject: a.subject, role: a.role });
  return [...seen.values()];
}

export function valueProblem(def: AttributeDefinition, value: AttributeValue): string | undefined {
  switch (def.type) {
    case 'string':
      return typeof value === 'string' ? undefined : 'must be a string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'must be a number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? undefined : 'must be a list of strings';
    case 'level':
      return typeof value === 'string' && (def.levels ?? []).includes(value) ? undefined : `must be one of ${(def.levels ?? []).join(', ')}`;
  }
}
