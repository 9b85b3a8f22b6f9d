import { PalisadeError } from '@palisade/contracts';
import type { PiiAction } from './guard-policy.events';
import type { EntityType, PiiDetector } from './pii.detector';

/** Keys whose string values are protocol, not content: never scanned nor changed. */
const PROTOCOL_KEYS = new Set(['role', 'type', 'id', 'tool_call_id', 'tool_use_id', 'model', 'media_type', 'detail', 'cache_control', 'finish_reason', 'stop_reason', 'object']);
/** Keys whose object values are binary payloads (images, audio, documents): not text. */
const BINARY_KEYS = new Set(['image_url', 'source', 'input_audio', 'file']);

export type MaskStatistics = Partial<Record<EntityType, number>>;

export interface MaskOptions {
  /** Past this, detection is a failure and the request is refused (fail-closed). */
  deadlineMs: number;
  now?: () => number;
  /** The tenant's policy per entity type (default: mask everything). */
  actionOf?: (type: EntityType) => PiiAction;
}

const OPEN = '⟦';
const CLOSE = '⟧';
const PLACEHOLDER = /⟦([A-Z_]+)_(\d+)⟧/g;

/**
 * Reversible masking, one instance per request: each distinct value becomes a
 * placeholder `⟦EMAIL_1⟧` (the same value the same placeholder, so the model can still
 * refer to it), the originals stay in this object's memory only and are put back into
 * the response for the caller. Statistics count entities per type; they never hold a value.
 */
export class MaskingSession {
  private readonly byValue = new Map<string, string>();
  private readonly byPlaceholder = new Map<string, string>();
  private readonly counters = new Map<EntityType, number>();
  /** Entities found per type (masked or not). */
  readonly statistics: MaskStatistics = {};
  /** Entities the tenant's policy let through unmasked, per type. */
  readonly allowed: MaskStatistics = {};
  /** Types the tenant's policy blocks that were found (the request is refused). */
  readonly blocked = new Set<EntityType>();
  private actionOf: (type: EntityType) => PiiAction = () => 'mask';

  constructor(private readonly detector: Pick<PiiDetector, 'detect'>) {}

  get found(): EntityType[] {
    return Object.keys(this.statistics) as EntityType[];
  }

  get masked(): number {
    const sum = (s: MaskStatistics) => Object.values(s).reduce((a, b) => a + (b ?? 0), 0);
    return sum(this.statistics) - sum(this.allowed);
  }

  /** The text with every entity replaced by its placeholder. */
  maskText(text: string): string {
    const entities = this.detector.detect(text);
    if (entities.length === 0) return text;
    let out = '';
    let at = 0;
    for (const e of entities) {
      this.statistics[e.type] = (this.statistics[e.type] ?? 0) + 1;
      const action = this.actionOf(e.type);
      if (action === 'block') this.blocked.add(e.type);
      if (action === 'allow') {
        this.allowed[e.type] = (this.allowed[e.type] ?? 0) + 1;
        continue;
      }
      out += text.slice(at, e.start) + this.placeholderFor(e.type, text.slice(e.start, e.end));
      at = e.end;
    }
    return out + text.slice(at);
  }

  /** Puts the originals back (a placeholder this request did not make is left as it is). */
  unmaskText(text: string): string {
    if (!text.includes(OPEN)) return text;
    return text.replace(PLACEHOLDER, (whole) => this.byPlaceholder.get(whole) ?? whole);
  }

  /**
   * As `unmaskText`, in JSON text (a tool call's arguments, whole or streamed): each
   * original is JSON-escaped, so a value holding a quote, a backslash or a newline (a
   * private key, a connection string) stays inside its string and cannot add members.
   */
  unmaskJsonText(text: string): string {
    if (!text.includes(OPEN)) return text;
    return text.replace(PLACEHOLDER, (whole) => {
      const value = this.byPlaceholder.get(whole);
      return value === undefined ? whole : JSON.stringify(value).slice(1, -1);
    });
  }

  /**
   * Masks every content string of a request body (messages, system prompts, tool
   * results, tool-call arguments), fail-closed: any error, or the deadline passing, is a
   * refusal; the body is never returned half-masked. An entity type the tenant's policy
   * blocks refuses the request (403 naming the type, never the value).
   */
  maskBody<T>(body: T, options: MaskOptions): T {
    const now = options.now ?? (() => performance.now());
    const deadline = now() + options.deadlineMs;
    if (options.actionOf) this.actionOf = options.actionOf;
    let masked: T;
    try {
      masked = this.walk(body, undefined, (s) => {
        if (now() > deadline) throw new Error('deadline');
        return this.maskText(s);
      }) as T;
    } catch {
      throw new PalisadeError('unavailable', 'the PII detector could not check the request in time: refused (nothing was sent)');
    }
    if (this.blocked.size > 0) {
      const types = [...this.blocked].sort();
      throw new PalisadeError('forbidden', `the request contains ${types.join(', ')}, which the tenant's guard policy blocks: refused (nothing was sent)`, { guard: 'pii', entityTypes: types });
    }
    return masked;
  }

  /** The response with the originals back in every content string. */
  unmaskBody<T>(body: T): T {
    if (this.byPlaceholder.size === 0) return body;
    return this.walk(body, undefined, (s, key) => (key === 'arguments' ? this.unmaskJsonText(s) : this.unmaskText(s))) as T;
  }

  private walk(value: unknown, key: string | undefined, fn: (s: string, key: string | undefined) => string): unknown {
    if (typeof value === 'string') return key !== undefined && PROTOCOL_KEYS.has(key) ? value : fn(value, key);
    if (Array.isArray(value)) return value.map((v) => this.walk(v, undefined, fn));
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = BINARY_KEYS.has(k) && v !== null && typeof v === 'object' ? v : this.walk(v, k, fn);
      return out;
    }
    return value;
  }

  private placeholderFor(type: EntityType, value: string): string {
    const known = this.byValue.get(value);
    if (known) return known;
    const n = (this.counters.get(type) ?? 0) + 1;
    this.counters.set(type, n);
    const placeholder = `${OPEN}${type.toUpperCase()}_${n}${CLOSE}`;
    this.byValue.set(value, placeholder);
    this.byPlaceholder.set(placeholder, value);
    return placeholder;
  }
}
