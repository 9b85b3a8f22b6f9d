import {
  ATTRIBUTE_NAME,
  COMPARISON_OPS,
  type AttributeDefinition,
  type AttributeValue,
  type Attributes,
  type Condition,
  type Scalar,
} from './policy.model';

/** What a compiled condition reads: the subject's and the resource's attributes. */
export interface ConditionInput {
  subject: Attributes;
  resource: Attributes;
  /** When given, every attribute read is recorded with its value (explain mode). */
  used?: Record<string, AttributeValue | null>;
}

/** true / false, or undefined when an attribute it needs is missing (the rule then does not apply). */
export type CompiledCondition = (input: ConditionInput) => boolean | undefined;

const MAX_DEPTH = 8;
const MAX_NODES = 64;
const BUILT_INS = new Set(['subject.id', 'resource.id']);

export type Definitions = ReadonlyMap<string, AttributeDefinition>;

export function definitionKey(target: 'subject' | 'resource', name: string): string {
  return `${target}.${name}`;
}

/**
 * Problems of a condition against the tenant's attribute definitions, each naming
 * where (`when.all.1.attr`); empty when it is valid.
 */
export function conditionProblems(condition: Condition, defs: Definitions, path = 'when'): string[] {
  const problems: string[] = [];
  let nodes = 0;
  const visit = (c: Condition, p: string, depth: number): void => {
    if (++nodes > MAX_NODES) {
      if (nodes === MAX_NODES + 1) problems.push(`${p}: condition has more than ${MAX_NODES} nodes`);
      return;
    }
    if (depth > MAX_DEPTH) return void problems.push(`${p}: condition nests deeper than ${MAX_DEPTH}`);
    if (typeof c !== 'object' || c === null) return void problems.push(`${p}: must be an object`);
    if ('all' in c || 'any' in c) {
      const list = 'all' in c ? c.all : (c as { any: Condition[] }).any;
      const key = 'all' in c ? 'all' : 'any';
      if (!Array.isArray(list) || list.length === 0) return void problems.push(`${p}.${key}: must be a non-empty array`);
      list.forEach((child, i) => visit(child, `${p}.${key}.${i}`, depth + 1));
      return;
    }
    if ('not' in c) return visit(c.not, `${p}.not`, depth + 1);
    const cmp = c as { attr: string; op: string; value?: unknown; ref?: string };
    if (!COMPARISON_OPS.includes(cmp.op as never)) return void problems.push(`${p}.op: must be one of ${COMPARISON_OPS.join(', ')}`);
    const left = attributeProblem(cmp.attr, defs);
    if (left) return void problems.push(`${p}.attr: ${left}`);
    if ((cmp.value === undefined) === (cmp.ref === undefined)) return void problems.push(`${p}: give exactly one of value or ref`);
    if (cmp.ref !== undefined) {
      const right = attributeProblem(cmp.ref, defs);
      if (right) return void problems.push(`${p}.ref: ${right}`);
    } else if (!isScalarOrList(cmp.value)) {
      return void problems.push(`${p}.value: must be a string, number, boolean or list of strings`);
    }
    if (['gte', 'gt', 'lte', 'lt'].includes(cmp.op)) {
      const def = defs.get(cmp.attr);
      const ordered = def && (def.type === 'number' || def.type === 'level');
      if (!ordered) return void problems.push(`${p}.op: ${cmp.op} needs a number or level attribute, ${cmp.attr} is not`);
      if (def.type === 'level') {
        const levels = def.levels ?? [];
        if (cmp.value !== undefined && !levels.includes(String(cmp.value))) problems.push(`${p}.value: not a level of ${cmp.attr} (${levels.join(' < ')})`);
        const refDef = cmp.ref !== undefined ? defs.get(cmp.ref) : undefined;
        if (cmp.ref !== undefined && (refDef?.type !== 'level' || refDef.levels?.join('\u0000') !== levels.join('\u0000'))) {
          problems.push(`${p}.ref: ${cmp.ref} must be a level attribute on the same scale as ${cmp.attr}`);
        }
      }
    }
  };
  visit(condition, path, 0);
  return problems;
}

function attributeProblem(path: unknown, defs: Definitions): string | undefined {
  if (typeof path !== 'string') return 'must be subject.<attribute> or resource.<attribute>';
  if (BUILT_INS.has(path)) return undefined;
  const [target, name, ...rest] = path.split('.');
  if ((target !== 'subject' && target !== 'resource') || !name || rest.length > 0 || !ATTRIBUTE_NAME.test(name)) {
    return 'must be subject.<attribute> or resource.<attribute>';
  }
  return defs.has(path) ? undefined : `attribute ${path} is not defined`;
}

function isScalarOrList(v: unknown): v is Scalar | string[] {
  return ['string', 'number', 'boolean'].includes(typeof v) || (Array.isArray(v) && v.length <= 256 && v.every((x) => typeof x === 'string'));
}

function read(input: ConditionInput, path: string): AttributeValue | undefined {
  const dot = path.indexOf('.');
  const bag = path.charCodeAt(0) === 115 /* s */ ? input.subject : input.resource;
  const value = bag[path.slice(dot + 1)];
  if (input.used) input.used[path] = value ?? null;
  return value;
}

/** Compile a validated condition to a closure (no interpretation of the tree per decision). */
export function compileCondition(condition: Condition, defs: Definitions): CompiledCondition {
  if ('all' in condition || 'any' in condition) {
    // all: false wins; any: true wins; otherwise unknown if any part is unknown
    const decisive = 'any' in condition;
    const parts = ('all' in condition ? condition.all : condition.any).map((c) => compileCondition(c, defs));
    return (input) => {
      let unknown = false;
      for (const part of parts) {
        const r = part(input);
        if (r === decisive) return decisive;
        if (r === undefined) unknown = true;
      }
      return unknown ? undefined : !decisive;
    };
  }
  if ('not' in condition) {
    const inner = compileCondition(condition.not, defs);
    return (input) => {
      const r = inner(input);
      return r === undefined ? undefined : !r;
    };
  }
  const { attr, op, value, ref } = condition;
  const levels = defs.get(attr)?.type === 'level' ? defs.get(attr)!.levels ?? [] : undefined;
  const rank = (v: AttributeValue | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (levels) {
      const i = levels.indexOf(String(v));
      return i < 0 ? undefined : i;
    }
    return typeof v === 'number' ? v : undefined;
  };
  const right: (input: ConditionInput) => AttributeValue | undefined = ref !== undefined ? (input) => read(input, ref) : () => value;
  return (input) => {
    const l = read(input, attr);
    const r = right(input);
    if (l === undefined || r === undefined) return undefined;
    switch (op) {
      case 'eq':
        return equal(l, r);
      case 'ne':
        return !equal(l, r);
      case 'in':
        return Array.isArray(r) ? (Array.isArray(l) ? l.every((x) => r.includes(x)) : r.includes(String(l))) : equal(l, r);
      case 'contains':
        return Array.isArray(l) ? (Array.isArray(r) ? r.every((x) => l.includes(x)) : l.includes(String(r))) : typeof l === 'string' && l.includes(String(r));
      default: {
        const a = rank(l);
        const b = rank(r);
        if (a === undefined || b === undefined) return undefined;
        return op === 'gte' ? a >= b : op === 'gt' ? a > b : op === 'lte' ? a <= b : a < b;
      }
    }
  };
}

function equal(a: AttributeValue, b: AttributeValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => x === b[i]);
  }
  return a === b;
}
