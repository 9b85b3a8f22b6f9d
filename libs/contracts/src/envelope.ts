import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { SERVICE_NAMES, type ServiceName } from './services';

/**
 * The one envelope of every platform event (audit-log-format.md, "The event inside a
 * record"). Validated when published and again when consumed.
 */
export const ACTOR_TYPES = ['user', 'service', 'agent', 'system'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

/** Tenant id of platform-wide events. */
export const SYSTEM_TENANT = 'system';

/** Largest serialized event we accept on the bus. */
export const MAX_EVENT_BYTES = 256 * 1024;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TOKEN = '[a-z][a-z0-9_-]*';
const SERVICE_ALTERNATIVES = SERVICE_NAMES.map((s) => s.replace(/-/g, '\\-')).join('|');
/** `<service>.<aggregate>.<past-tense verb>` */
export const EVENT_TYPE = new RegExp(`^(${SERVICE_ALTERNATIVES})\\.${TOKEN}\\.${TOKEN}$`);
export const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const timestamp = z
  .string()
  .regex(RFC3339_UTC_MS, 'must be RFC 3339 UTC with milliseconds, e.g. 2026-11-22T10:00:00.000Z')
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be a real instant');

export const actorSchema = z.strictObject({
  type: z.enum(ACTOR_TYPES),
  id: z.string().min(1).max(200),
});

/**
 * Personal data rides only here, and is stored only sealed: the producer has the audit
 * service seal it (`SEAL_PERSONAL_SUBJECT`) before the event reaches its event store,
 * JetStream or the audit topic, so erasing the subject (destroying its key) makes it
 * unreadable everywhere. Plaintext exists only in the producer's memory, on the way.
 */
export const personalSchema = z.strictObject({
  subjectId: z.string().min(1).max(200),
  data: z.record(z.string(), z.unknown()),
});

const LOWERCASE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/**
 * `personal` sealed by the audit service (audit-log-format.md): AES-256-GCM under the data
 * subject's key `keyId`; `sealed` is base64url of iv (12) || ciphertext || tag (16), with
 * the event id as associated data (so it cannot be moved to another event).
 */
export const sealedPersonalSchema = z.strictObject({
  subjectId: z.string().min(1).max(200),
  keyId: z.string().regex(LOWERCASE_UUID, 'must be a lowercase UUID'),
  alg: z.literal('A256GCM'),
  sealed: z.string().regex(BASE64URL, 'must be base64url').max(MAX_EVENT_BYTES),
});

/** The transport sealing's algorithm name (libs/nats transport-sealing.ts; RFC 9180 HPKE, export-only mode). */
export const TRANSPORT_SEALING_ALG = 'HPKE-X25519-SHA256-EXPORT-A256GCM';
/**
 * 32 bytes in base64url without padding (43 characters): an audit transport key id (the
 * SHA-256 thumbprint of its public key, RFC 7638), an X25519 public key or encapsulation.
 */
export const BASE64URL_32_BYTES = /^[A-Za-z0-9_-]{43}$/;
const NONCE_96 = /^[A-Za-z0-9_-]{16}$/;
/**
 * `personal` as a producer stores it (libs/nats TransportPersonalSealer): sealed on its way
 * to the audit service, which alone can open it. HPKE (RFC 9180) base mode, DHKEM(X25519,
 * HKDF-SHA256), HKDF-SHA256, export-only, to the audit transport key `kid`: `enc` is the
 * encapsulated key of the producer's current epoch, and the epoch's exported 32-byte key
 * seals `ct` = AES-256-GCM(JSON of `data`) || tag (16) under the 96-bit `nonce`, with
 * associated data naming the event (id, tenant, source, type), the subject, `kid` and `enc`
 * (`transportSealingAad`), so it cannot be moved to another event, tenant, source, type or
 * subject. All base64url
 * without padding. The audit service opens it at ingest and seals it under the subject's
 * key (`sealedPersonalSchema`): the audit topic never holds this form.
 */
export const transportSealedPersonalSchema = z.strictObject({
  subjectId: z.string().min(1).max(200),
  alg: z.literal(TRANSPORT_SEALING_ALG),
  kid: z.string().regex(BASE64URL_32_BYTES, 'must be an audit transport key id (43 base64url characters)'),
  enc: z.string().regex(BASE64URL_32_BYTES, 'must be an X25519 encapsulated key (43 base64url characters)'),
  nonce: z.string().regex(NONCE_96, 'must be a 96-bit nonce (16 base64url characters)'),
  ct: z.string().regex(BASE64URL, 'must be base64url').max(MAX_EVENT_BYTES),
});

/** The envelope's members, each with its rule (for schemas of parts of an event). */
export const envelopeShape = {
  id: z.string().regex(UUID_V7, 'must be a lowercase UUIDv7'),
  type: z.string().regex(EVENT_TYPE, 'must be <service>.<aggregate>.<past-tense verb> of a known service'),
  source: z.enum(SERVICE_NAMES as [ServiceName, ...ServiceName[]]),
  tenantId: z.string().regex(TENANT_ID, `must be a tenant id or "${SYSTEM_TENANT}"`),
  actor: actorSchema,
  occurredAt: timestamp,
  data: z.record(z.string(), z.unknown()),
  personal: z.union([personalSchema, sealedPersonalSchema, transportSealedPersonalSchema]).optional(),
};

function sourceMatchesType(e: { type: string; source: string }): boolean {
  return e.type.startsWith(`${e.source}.`);
}
const SOURCE_MISMATCH = { message: 'must be the service named by type', path: ['source'] };

/** What a producer may publish: exactly the envelope's members. */
export const publishableEventSchema = z.strictObject(envelopeShape).refine(sourceMatchesType, SOURCE_MISMATCH);
/** What a consumer accepts: the envelope, keeping members a newer producer may add. */
export const consumedEventSchema = z.looseObject(envelopeShape).refine(sourceMatchesType, SOURCE_MISMATCH);

export type Actor = z.infer<typeof actorSchema>;
export type Personal = z.infer<typeof personalSchema>;
/** `personal` sealed under its data subject's key by the audit service: the audit topic's form. */
export type SealedPersonal = z.infer<typeof sealedPersonalSchema>;
/** `personal` sealed by its producer for the audit service alone (on its way, in outboxes and JetStream). */
export type TransportSealedPersonal = z.infer<typeof transportSealedPersonalSchema>;
/** `personal` as an event may carry it. */
export type AnyPersonal = Personal | SealedPersonal | TransportSealedPersonal;

/** Whether a `personal` member is sealed, either way (else it is plaintext on its way to be sealed). */
export function isSealedPersonal(p: AnyPersonal | undefined): p is SealedPersonal | TransportSealedPersonal {
  return !!p && (typeof (p as SealedPersonal).sealed === 'string' || typeof (p as TransportSealedPersonal).ct === 'string');
}

/** Whether a `personal` member is transport-sealed by its producer (to be opened by the audit service alone). */
export function isTransportSealedPersonal(p: AnyPersonal | undefined): p is TransportSealedPersonal {
  return !!p && typeof (p as TransportSealedPersonal).ct === 'string';
}

/** Whether a `personal` member is sealed under its data subject's key (the audit topic's form). */
export function isSubjectSealedPersonal(p: AnyPersonal | undefined): p is SealedPersonal {
  return !!p && typeof (p as SealedPersonal).sealed === 'string';
}

export interface EventEnvelope<TType extends string = string, TData extends object = Record<string, unknown>> {
  id: string;
  type: TType;
  source: ServiceName;
  tenantId: string;
  actor: Actor;
  occurredAt: string;
  data: TData;
  personal?: AnyPersonal;
}

export type EnvelopeValidation =
  | { ok: true; event: EventEnvelope }
  | { ok: false; problems: string[] };

function problemsOf(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`);
}

// A `\ud800`–`\udfff` escape after an even number of backslashes (an odd one escapes the first).
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/**
 * At most `max` UTF-16 code units of `text` for an event, well-formed: a surrogate pair cut
 * in two, or a lone surrogate the caller sent, becomes U+FFFD (which events may not hold).
 */
export function clip(text: string, max: number): string {
  return ((text.length > max ? text.slice(0, max) : text) as WellFormable).toWellFormed();
}

/** ES2024's String.prototype.toWellFormed (Node ≥ 20), which the ES2023 lib does not declare. */
type WellFormable = string & { toWellFormed(): string };

/** Validate an event before it is appended or published: by hand when it is plain, else by zod (which alone refuses). */
export function validateForPublish(value: unknown): EnvelopeValidation {
  const event = HAND_CHECK_CURRENT ? publishableByHand(value) : undefined;
  return event ? { ok: true, event } : validateForPublishBySchema(value);
}

/** `validateForPublish` by the schema and the exact JSON alone: the reference its hand check must agree with. */
export function validateForPublishBySchema(value: unknown): EnvelopeValidation {
  const parsed = publishableEventSchema.safeParse(value);
  if (!parsed.success) return { ok: false, problems: problemsOf(parsed.error) };
  const json = JSON.stringify(parsed.data);
  const size = Buffer.byteLength(json);
  if (size > MAX_EVENT_BYTES) return { ok: false, problems: [`(event): ${size} bytes exceeds ${MAX_EVENT_BYTES}`] };
  // JSON.stringify writes a lone surrogate as a \udxxx escape (a pair as is): not I-JSON, so
  // the audit chain's RFC 8785 could not hold it as sent (audit replaces it with U+FFFD).
  if (json.includes('\\ud') && LONE_SURROGATE_ESCAPE.test(json)) return { ok: false, problems: ['(event): a string holds a lone UTF-16 surrogate (cut a string by code points, not code units)'] };
  return { ok: true, event: parsed.data as EventEnvelope };
}

const ENVELOPE_ORDER = ['id', 'type', 'source', 'tenantId', 'actor', 'occurredAt', 'data'] as const;
const KNOWN_SERVICES: ReadonlySet<string> = new Set(SERVICE_NAMES);
const KNOWN_ACTOR_TYPES: ReadonlySet<string> = new Set(ACTOR_TYPES);
const membersOf = (schema: { shape: object }) => Object.keys(schema.shape).join();
/** The hand checks know these members only: one added to a schema turns them off (all to zod) until they learn it. */
const HAND_CHECK_CURRENT =
  [...ENVELOPE_ORDER, 'personal'].join() === Object.keys(envelopeShape).join() &&
  membersOf(actorSchema) === 'type,id' &&
  membersOf(personalSchema) === 'subjectId,data' &&
  membersOf(sealedPersonalSchema) === 'subjectId,keyId,alg,sealed' &&
  membersOf(transportSealedPersonalSchema) === 'subjectId,alg,kid,enc,nonce,ct';

/** An object as JSON.parse makes it, without a `__proto__` member (zod's copy would drop or apply it). */
const isParsedObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && !Object.hasOwn(v, '__proto__');

/** `keys` (an object's own) are exactly `members`, in their order or (`ordered` false) in any. */
const keysAre = (keys: readonly string[], members: readonly string[], ordered: boolean): boolean =>
  keys.length === members.length && members.every((m, i) => (ordered ? keys[i] === m : keys.includes(m)));
const isSubjectId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 200;
const ACTOR_ORDER = ['type', 'id'] as const;
const PERSONAL_ORDER = ['subjectId', 'data'] as const;
const SEALED_PERSONAL_ORDER = ['subjectId', 'keyId', 'alg', 'sealed'] as const;
const TRANSPORT_SEALED_PERSONAL_ORDER = ['subjectId', 'alg', 'kid', 'enc', 'nonce', 'ct'] as const;
const personalOrderOf = (p: AnyPersonal) =>
  isTransportSealedPersonal(p) ? TRANSPORT_SEALED_PERSONAL_ORDER : isSubjectSealedPersonal(p) ? SEALED_PERSONAL_ORDER : PERSONAL_ORDER;

/**
 * The envelope's members checked by hand: every rule of the schema. `keys` are `v`'s own;
 * `ordered`: the envelope's (and the actor's) in the schema's order, first.
 */
function hasPlainEnvelopeMembers(v: Record<string, unknown>, keys: readonly string[], ordered: boolean): boolean {
  if (keys.length < ENVELOPE_ORDER.length) return false;
  for (let i = 0; i < ENVELOPE_ORDER.length; i++) if (ordered ? keys[i] !== ENVELOPE_ORDER[i] : !keys.includes(ENVELOPE_ORDER[i])) return false;
  const { id, type, source, tenantId, actor, occurredAt, data } = v;
  if (typeof id !== 'string' || !UUID_V7.test(id)) return false;
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) return false;
  if (typeof source !== 'string' || !KNOWN_SERVICES.has(source) || !type.startsWith(`${source}.`)) return false;
  if (typeof tenantId !== 'string' || !TENANT_ID.test(tenantId)) return false;
  if (typeof occurredAt !== 'string' || !RFC3339_UTC_MS.test(occurredAt) || Number.isNaN(Date.parse(occurredAt))) return false;
  if (!isParsedObject(data)) return false;
  if (!isParsedObject(actor) || !keysAre(Object.keys(actor), ACTOR_ORDER, ordered)) return false;
  return typeof actor.type === 'string' && KNOWN_ACTOR_TYPES.has(actor.type) && isSubjectId(actor.id);
}

/**
 * The common event as a consumer receives it, checked by hand: the envelope's members in
 * the schema's order (so the event is what zod would return, without its copy), then any a
 * newer producer added, no `personal`. Anything else goes to zod, which alone refuses: the
 * same inputs are refused with the same problems.
 */
function isPlainEnvelope(v: unknown): v is EventEnvelope {
  return isParsedObject(v) && !Object.hasOwn(v, 'personal') && hasPlainEnvelopeMembers(v, Object.keys(v), true);
}

/** `personal` as `personalSchema`, `sealedPersonalSchema` or `transportSealedPersonalSchema` takes it, members in any order. */
function isPlainPersonal(p: unknown): p is AnyPersonal {
  if (!isParsedObject(p) || !isSubjectId(p.subjectId)) return false;
  const keys = Object.keys(p);
  if (keysAre(keys, PERSONAL_ORDER, false)) return isParsedObject(p.data);
  if (keysAre(keys, TRANSPORT_SEALED_PERSONAL_ORDER, false)) {
    return (
      p.alg === TRANSPORT_SEALING_ALG &&
      typeof p.kid === 'string' && BASE64URL_32_BYTES.test(p.kid) &&
      typeof p.enc === 'string' && BASE64URL_32_BYTES.test(p.enc) &&
      typeof p.nonce === 'string' && NONCE_96.test(p.nonce) &&
      typeof p.ct === 'string' && p.ct.length <= MAX_EVENT_BYTES && BASE64URL.test(p.ct)
    );
  }
  return (
    keysAre(keys, SEALED_PERSONAL_ORDER, false) &&
    typeof p.keyId === 'string' && LOWERCASE_UUID.test(p.keyId) &&
    p.alg === 'A256GCM' &&
    typeof p.sealed === 'string' && p.sealed.length <= MAX_EVENT_BYTES && BASE64URL.test(p.sealed)
  );
}

/** ES2024's String.prototype.isWellFormed (Node ≥ 20): no lone surrogate. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();
const MAX_JSON_DEPTH = 64;
/** Bytes JSON.stringify's longest number takes (e.g. -1.2345678901234567e-308). */
const NUMBER_BYTES = 25;

/**
 * At least as many bytes as JSON.stringify(v) in UTF-8 (a code unit takes at most 6:
 * `\u00xx`), or -1 when `v` holds what it cannot tell without stringifying (a lone
 * surrogate, a value with `toJSON` or of a class, a function, a bigint, a cycle) or the
 * bound passes `budget`. Reads without allocating.
 */
function jsonBytesAtMost(v: unknown, budget: number, depth: number): number {
  switch (typeof v) {
    case 'string':
      return isWellFormed(v) ? 2 + 6 * v.length : -1;
    case 'number':
      return NUMBER_BYTES;
    case 'boolean':
      return 5;
    case 'object':
      break;
    default:
      return -1;
  }
  if (v === null) return 4;
  if (depth > MAX_JSON_DEPTH) return -1;
  let bytes = 2;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return -1;
    for (let i = 0; i < v.length; i++) {
      const item: unknown = v[i];
      const b = item === undefined ? 4 : jsonBytesAtMost(item, budget - bytes, depth + 1);
      if (b < 0 || (bytes += b + 1) > budget) return -1;
    }
    return bytes;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return -1;
  const o = v as Record<string, unknown>;
  for (const key in o) {
    if (!Object.hasOwn(o, key)) return -1;
    const item = o[key];
    if (item === undefined) continue;
    if (!isWellFormed(key)) return -1;
    const b = jsonBytesAtMost(item, budget - bytes, depth + 1);
    if (b < 0 || (bytes += 2 + 6 * key.length + 1 + b + 1) > budget) return -1;
  }
  return bytes;
}

/**
 * An event as a producer builds it (or as jsonb returns it, members reordered), checked by
 * hand: every rule of `publishableEventSchema`, and its JSON surely within `MAX_EVENT_BYTES`
 * and without a lone surrogate. The event as zod would return it: itself when its members
 * are in the schemas' order, else a copy of the envelope in that order (`data` as is).
 * Anything else goes to zod and the exact JSON, which alone refuse (`undefined`): the same
 * inputs are refused with the same problems.
 */
function publishableByHand(v: unknown): EventEnvelope | undefined {
  if (!isParsedObject(v)) return undefined;
  const keys = Object.keys(v);
  const personal = v.personal as AnyPersonal | undefined;
  if (keys.length === ENVELOPE_ORDER.length + 1) {
    if (!keys.includes('personal') || !isPlainPersonal(personal)) return undefined;
  } else if (keys.length !== ENVELOPE_ORDER.length) return undefined;
  if (!hasPlainEnvelopeMembers(v, keys, false) || jsonBytesAtMost(v, MAX_EVENT_BYTES, 0) < 0) return undefined;
  const event = v as unknown as EventEnvelope;
  const ordered =
    keysAre(keys, personal ? [...ENVELOPE_ORDER, 'personal'] : ENVELOPE_ORDER, true) &&
    keysAre(Object.keys(event.actor), ACTOR_ORDER, true) &&
    (!personal || keysAre(Object.keys(personal), personalOrderOf(personal), true));
  if (ordered) return event;
  const copy: EventEnvelope = {
    id: event.id,
    type: event.type,
    source: event.source,
    tenantId: event.tenantId,
    actor: { type: event.actor.type, id: event.actor.id },
    occurredAt: event.occurredAt,
    data: event.data,
  };
  if (personal) {
    copy.personal = isTransportSealedPersonal(personal)
      ? { subjectId: personal.subjectId, alg: personal.alg, kid: personal.kid, enc: personal.enc, nonce: personal.nonce, ct: personal.ct }
      : isSubjectSealedPersonal(personal)
        ? { subjectId: personal.subjectId, keyId: personal.keyId, alg: personal.alg, sealed: personal.sealed }
        : { subjectId: personal.subjectId, data: personal.data };
  }
  return copy;
}

/**
 * Validate an event received from the bus. The common envelope is checked by hand (per
 * event on every consumer, where zod's checks and copy were most of validation's cost);
 * the rest, and every refusal, by `consumedEventSchema`.
 */
export function validateConsumed(value: unknown): EnvelopeValidation {
  if (HAND_CHECK_CURRENT && isPlainEnvelope(value)) return { ok: true, event: value };
  const parsed = consumedEventSchema.safeParse(value);
  return parsed.success
    ? { ok: true, event: parsed.data as EventEnvelope }
    : { ok: false, problems: problemsOf(parsed.error) };
}

export function serviceOfEventType(type: string): ServiceName | undefined {
  const match = EVENT_TYPE.exec(type);
  return match ? (match[1] as ServiceName) : undefined;
}

/** RFC 3339 UTC with milliseconds, the one time format of the envelope. */
export function toTimestamp(date: Date): string {
  return date.toISOString();
}

export interface NewEvent<TType extends string, TData extends object> {
  type: TType;
  tenantId: string;
  actor: Actor;
  data: TData;
  personal?: Personal;
}

/** Ids and time come from outside so deciders stay pure. */
export interface EventFactoryContext {
  source: ServiceName;
  now: () => Date;
  newId: () => string;
}

export const systemEventContext = (source: ServiceName): EventFactoryContext => ({
  source,
  now: () => new Date(),
  newId: () => uuidv7(),
});

export function buildEvent<TType extends string, TData extends object>(
  ctx: EventFactoryContext,
  e: NewEvent<TType, TData>,
): EventEnvelope<TType, TData> {
  const event: EventEnvelope<TType, TData> = {
    id: ctx.newId(),
    type: e.type,
    source: ctx.source,
    tenantId: e.tenantId,
    actor: e.actor,
    occurredAt: toTimestamp(ctx.now()),
    data: e.data,
  };
  if (e.personal) event.personal = e.personal;
  return event;
}

export { uuidv7 as newEventId };
