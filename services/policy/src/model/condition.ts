import {
  ATTRIBUTE_NAME,
  COMPARISON_OPS,
  type AttributeDefinition,
  type AttributeValue,
  type Attributes,
  type ComparisonOp,
  type Condition,
  type Scalar,
} from './policy.model';

/** What a compiled condition reads: the subject's and the resource's attributes. */
export interface ConditionInput {
  subject: Attributes;
  resource: Attributes;
  /** `subject.id`, over any attribute of that name in `subject` (read from `subject` when absent). */
  subjectId?: string;
  /** `resource.id`, over any attribute of that name in `resource` (read from `resource` when absent). */
  resourceId?: string;
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

type Reader = (input: ConditionInput) => AttributeValue | undefined;

/**
 * A reader of one attribute path, its target and name split once at compile time (no
 * string work per decision); `subject.id` / `resource.id` come from the input's ids.
 */
function readerOf(path: string): Reader {
  const name = path.slice(path.indexOf('.') + 1);
  const ofSubject = path.charCodeAt(0) === 115; /* s */
  const value: Reader =
    name === 'id'
      ? ofSubject
        ? (input) => input.subjectId ?? input.subject.id
        : (input) => input.resourceId ?? input.resource.id
      : ofSubject
        ? (input) => input.subject[name]
        : (input) => input.resource[name];
  return (input) => {
    const v = value(input);
    if (input.used) input.used[path] = v ?? null;
    return v;
  };
}

/** Rank on the attribute's scale: a level's position (levels looked up in a map built once), or the number itself. */
function rankerOf(levels: readonly string[] | undefined): (v: AttributeValue) => number | undefined {
  if (!levels) return (v) => (typeof v === 'number' ? v : undefined);
  const ranks = new Map<string, number>();
  levels.forEach((level, i) => {
    if (!ranks.has(level)) ranks.set(level, i); // the first, as indexOf
  });
  return (v) => ranks.get(String(v));
}

type Comparison = (l: AttributeValue, r: AttributeValue) => boolean | undefined;

/** The ordering comparisons, on ranks. */
const ORDER: Record<Exclude<ComparisonOp, 'eq' | 'ne' | 'in' | 'contains'>, (a: number, b: number) => boolean> = {
  gte: (a, b) => a >= b,
  gt: (a, b) => a > b,
  lte: (a, b) => a <= b,
  lt: (a, b) => a < b,
};

function comparisonOf(op: ComparisonOp, rank: (v: AttributeValue) => number | undefined): Comparison {
  switch (op) {
    case 'eq':
      return equal;
    case 'ne':
      return (l, r) => !equal(l, r);
    case 'in':
      return (l, r) => (Array.isArray(r) ? (Array.isArray(l) ? l.every((x) => r.includes(x)) : r.includes(String(l))) : equal(l, r));
    case 'contains':
      return (l, r) => (Array.isArray(l) ? (Array.isArray(r) ? r.every((x) => l.includes(x)) : l.includes(String(r))) : typeof l === 'string' && l.includes(String(r)));
    default: {
      const holds = ORDER[op];
      return (l, r) => {
        const a = rank(l);
        const b = rank(r);
        return a === undefined || b === undefined ? undefined : holds(a, b);
      };
    }
  }
}

/**
 * Compile a validated condition to a closure, once per policy version: no interpretation
 * of the tree, no path splitting and no level search per decision.
 */
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
  const definition = defs.get(attr);
  const compare = comparisonOf(op, rankerOf(definition?.type === 'level' ? definition.levels ?? [] : undefined));
  const left = readerOf(attr);
  if (ref !== undefined) {
    const right = readerOf(ref);
    return (input) => {
      const l = left(input);
      const r = right(input);
      return l === undefined || r === undefined ? undefined : compare(l, r);
    };
  }
  return (input) => {
    const l = left(input);
    return l === undefined || value === undefined ? undefined : compare(l, value);
  };
}

function equal(a: AttributeValue, b: AttributeValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => x === b[i]);
  }
  return a === b;
}
