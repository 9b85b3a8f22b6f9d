import type { ServiceName } from '@palisade/contracts';
/**
 * The policy language of a tenant: roles with inheritance, assignments, rules with
 * ABAC conditions and field effects, attribute definitions, tool allowlists and
 * critical actions. Plain data: events carry it, the engine indexes it, Casbin
 * enforces the same rules in tests and in the benchmark.
 */
export type Scalar = string | number | boolean;
export type AttributeValue = Scalar | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue>>;

export const SUBJECT_PATTERN = /^(role|user|agent|service):[A-Za-z0-9_.:@-]{1,128}$/;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const ATTRIBUTE_NAME = /^[a-z][a-zA-Z0-9_]{0,63}$/;

/** What a condition compares: `subject.<attr>`, `resource.<attr>` (and the built-ins `subject.id`, `resource.id`). */
export type AttributePath = string;

export type ComparisonOp = 'eq' | 'ne' | 'in' | 'contains' | 'gte' | 'gt' | 'lte' | 'lt';
export const COMPARISON_OPS: readonly ComparisonOp[] = ['eq', 'ne', 'in', 'contains', 'gte', 'gt', 'lte', 'lt'];

export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | { attr: AttributePath; op: ComparisonOp; value?: Scalar | string[]; ref?: AttributePath };

export type RuleEffect = 'allow' | 'deny' | 'mask';

export interface Rule {
  /** Unique within the tenant (explain names it). */
  id: string;
  effect: RuleEffect;
  /** `role:<name>`, `user:<id>`, `agent:<id>` or `service:<name>`. */
  subject: string;
  /** Resource type, or `*`. */
  resource: string;
  /** Action, or `*`. */
  action: string;
  when?: Condition;
  /**
   * Field effect. With `deny`, the listed fields are withheld (the document stays
   * readable); with `mask`, they are returned masked. A `deny` without fields denies
   * the whole document.
   */
  fields?: string[];
}

export type AttributeType = 'string' | 'string[]' | 'number' | 'boolean' | 'level';

export interface AttributeDefinition {
  name: string;
  target: 'subject' | 'resource';
  type: AttributeType;
  /** For `level`: the ordered values, lowest first (e.g. public < internal < confidential < secret). */
  levels?: string[];
}

export interface Assignment {
  subject: string;
  role: string;
}

/** Orders, payments and contract signing need an approval unless configured otherwise. */
export const DEFAULT_CRITICAL_ACTIONS: readonly string[] = ['orders.create', 'payments.create', 'contracts.sign'];

/**
 * Built-in session roles (resource type `session`, attributes `owner`, `collaborators`,
 * `viewers` naming users and `agents` naming agents). The owner may also `create` the
 * session it is about to own. An agent working in the session (`agents`) has the
 * collaborator's actions for its own part, intersected with its user's role.
 */
export const SESSION_ROLE_ACTIONS: Readonly<Record<'owner' | 'collaborator' | 'viewer', readonly string[]>> = {
  owner: ['create', 'read', 'write', 'share', 'archive'],
  collaborator: ['read', 'write'],
  viewer: ['read'],
};
export type SessionRole = keyof typeof SESSION_ROLE_ACTIONS;

/** Resource types an agent may never change (read is fine). */
export const AGENT_IMMUTABLE_TYPES: readonly string[] = ['policy', 'role', 'assignment', 'approval', 'attribute', 'guide'];

/** Tool calls: action `invoke` on resource type `tool`, the tool's name as resource id. */
export const TOOL_RESOURCE = 'tool';
export const TOOL_ACTION = 'invoke';

/** The platform's own domain: only its roles may cross tenants. */
export const PLATFORM_TENANT = 'system';

export interface DecisionSubject {
  type: 'user' | 'agent' | 'service';
  id: string;
  /**
   * For an agent: the user it acts for. In a decision a service asks, set from the
   * agent's verified token (`act.sub`), never from the request body.
   */
  actingFor?: string;
  /**
   * For an agent (required) or a user (optional), in a decision a service asks: the
   * principal's access token as it was presented to that service. The policy service
   * verifies it and takes the agent or user, its tenant, its user (`act.sub`), teams and
   * department from it; it never reaches the evaluation.
   */
  token?: string;
  /** Tenant of the subject (defaults to the request's tenant). */
  tenantId?: string;
  /**
   * Teams and department (primary team) as auth issued them in the subject's verified
   * access token (never from a request body): ABAC reads them as `subject.teams` and
   * `subject.department`, over what the tenant stored for the subject.
   */
  teams?: readonly string[];
  department?: string;
}

export interface DecisionResource {
  type: string;
  id?: string;
  /** Tenant owning the resource (defaults to the request's tenant). */
  tenantId?: string;
  attributes?: Attributes;
  /** Fields of the record the caller wants to return: the decision says which are readable and which masked. */
  fields?: string[];
}

export interface DecisionRequest {
  tenantId: string;
  subject: DecisionSubject;
  action: string;
  resource: DecisionResource;
  /** Parameters of the action (amount, payee …): an approval is bound to them. */
  parameters?: Readonly<Record<string, unknown>>;
  /** One-time approval token for a critical action. */
  approvalToken?: string;
  explain?: boolean;
  /**
   * The service that asked (its client certificate, or the inbox its NATS reply goes
   * to), set at the edge, never read from the request body: an approval token is
   * redeemed only for the service the approval names.
   */
  askedBy?: ServiceName;
}

export type DecisionOutcome = 'allow' | 'deny' | 'requires_approval';

export interface FieldDecision {
  readable: string[];
  masked: string[];
}

export interface Explanation {
  /** The rule that decided: a rule id, or a built-in rule name (e.g. `default-deny`). */
  rule: string;
  /** Rules that matched (allow, deny and mask). */
  matched: string[];
  /** Attributes the matching conditions read, with the values seen. */
  attributes: Record<string, AttributeValue | null>;
}

export interface Decision {
  decision: DecisionOutcome;
  /** Why, in words safe to show the caller. */
  reason: string;
  /** The rule or built-in that decided (always present, cheap). */
  rule: string;
  fields?: FieldDecision;
  /** For requires_approval: the hash of the canonical action an approval must be bound to. */
  actionHash?: string;
  explain?: Explanation;
}
