import { SERVICE_NAMES } from '@palisade/contracts';

/**
 * Action classes of the audit log (brief, "Audit"): what an auditor filters and
 * exports by. `platform_operations` holds the platform's own life (service starts),
 * which no security action class describes.
 */
export const ACTION_CLASSES = [
  'authentication',
  'permission_change',
  'credential_lifecycle',
  'session',
  'tool_call',
  'model_io',
  'data_export',
  'admin_configuration',
  'platform_operations',
] as const;
export type ActionClass = (typeof ACTION_CLASSES)[number];

/** What an event type missing from the table is indexed as (and what the coverage test forbids). */
export const UNCLASSIFIED = 'unclassified';

/**
 * Every event type of every service and its action class. The one table: docs/action-classes.md
 * is checked against it, and coverage.unit.spec.ts fails when a service emits a type that
 * is not here. A service that adds an event type adds its row here in the same change.
 */
export const EVENT_TYPE_CLASSES: Readonly<Record<string, ActionClass>> = {
  // every service (libs/service-kit, lifecycle.ts)
  ...Object.fromEntries(SERVICE_NAMES.map((s) => [`${s}.lifecycle.started`, 'platform_operations' as const])),
  // audit (services/audit/src/audit.events.ts)
  'audit.events.queried': 'data_export',
  'audit.events.exported': 'data_export',
  'audit.subject.erased': 'admin_configuration',
  'audit.signing_key.rotated': 'credential_lifecycle',
  'audit.index.rebuilt': 'admin_configuration',
  'audit.index.quarantined': 'platform_operations',
  'audit.feed.created': 'admin_configuration',
  'audit.feed.deleted': 'admin_configuration',
  'audit.feed.paused': 'admin_configuration',
  'audit.feed.resumed': 'admin_configuration',
  // billing (services/billing/src/*/*.events.ts): budgets are configuration; holds and
  // thresholds are the spending side of model and tool calls
  'billing.budget.set': 'admin_configuration',
  'billing.budget.removed': 'admin_configuration',
  'billing.price-table.published': 'admin_configuration',
  'billing.budget.threshold_crossed': 'model_io',
  'billing.hold.reserved': 'model_io',
  'billing.hold.refused': 'model_io',
  'billing.hold.settled': 'model_io',
  'billing.hold.released': 'model_io',
  'billing.hold.expired': 'model_io',
  'billing.usage.exported': 'data_export',
  // auth (services/auth/src/*/*.events.ts)
  'auth.agent.registered': 'admin_configuration',
  'auth.agent.suspended': 'permission_change',
  'auth.agent.resumed': 'permission_change',
  'auth.agent.retired': 'permission_change',
  'auth.agent-guide.changed': 'admin_configuration',
  'auth.agent-token.issued': 'authentication',
  'auth.api-key.created': 'credential_lifecycle',
  'auth.api-key.rotated': 'credential_lifecycle',
  'auth.api-key.revoked': 'credential_lifecycle',
  'auth.identity-provider.configured': 'admin_configuration',
  'auth.identity-provider.removed': 'admin_configuration',
  'auth.revocation.issued': 'authentication',
  'auth.signing-key.created': 'credential_lifecycle',
  'auth.signing-key.activated': 'credential_lifecycle',
  'auth.signing-key.retired': 'credential_lifecycle',
  'auth.signing-key.revoked': 'credential_lifecycle',
  'auth.team.created': 'admin_configuration',
  'auth.team.renamed': 'admin_configuration',
  'auth.team.archived': 'admin_configuration',
  'auth.team-member.added': 'permission_change',
  'auth.team-member.removed': 'permission_change',
  'auth.tenant.created': 'admin_configuration',
  'auth.user.registered': 'admin_configuration',
  'auth.user.disabled': 'permission_change',
  'auth.user.erased': 'permission_change',
  // credential (services/credential/src/*/*.events.ts)
  'credential.keyring.provisioned': 'credential_lifecycle',
  'credential.keyring.rotated': 'credential_lifecycle',
  'credential.keyring.cipher_changed': 'credential_lifecycle',
  'credential.keyring.key_retired': 'credential_lifecycle',
  'credential.keyring.key_revoked': 'credential_lifecycle',
  'credential.lease.granted': 'credential_lifecycle',
  'credential.secret.created': 'credential_lifecycle',
  'credential.secret.read': 'credential_lifecycle',
  'credential.secret.rotated': 'credential_lifecycle',
  'credential.secret.revoked': 'credential_lifecycle',
  'credential.secret.rotation_due': 'credential_lifecycle',
  'credential.secret.rotation_overdue': 'credential_lifecycle',
  'credential.secret.shredded': 'credential_lifecycle',
  'credential.secret.version_retired': 'credential_lifecycle',
  // llm-router (services/llm-router/src/*/*.events.ts)
  'llm-router.model-call.recorded': 'model_io',
  'llm-router.provider.registered': 'admin_configuration',
  'llm-router.provider.removed': 'admin_configuration',
  'llm-router.model.registered': 'admin_configuration',
  'llm-router.model.removed': 'admin_configuration',
  'llm-router.route.configured': 'admin_configuration',
  'llm-router.route.removed': 'admin_configuration',
  'llm-router.settings.configured': 'admin_configuration',
  'llm-router.guard-policy.configured': 'admin_configuration',
  'llm-router.answer.held': 'model_io',
  'llm-router.answer.released': 'model_io',
  'llm-router.answer.expired': 'model_io',
  'llm-router.usage.recorded': 'model_io',
  // policy (services/policy/src/*/*.events.ts)
  'policy.approval.requested': 'permission_change',
  'policy.approval.approved': 'permission_change',
  'policy.approval.rejected': 'permission_change',
  'policy.approval.consumed': 'permission_change',
  'policy.assignment.granted': 'permission_change',
  'policy.assignment.revoked': 'permission_change',
  'policy.role.defined': 'permission_change',
  'policy.role.removed': 'permission_change',
  'policy.policy.published': 'permission_change',
  'policy.policy.withdrawn': 'permission_change',
  'policy.subject-attributes.set': 'permission_change',
  'policy.tool-allowlist.set': 'permission_change',
  'policy.attribute.defined': 'admin_configuration',
  'policy.critical-actions.set': 'admin_configuration',
  // sandbox-orchestrator (services/sandbox-orchestrator/src/*/*.events.ts)
  'sandbox-orchestrator.session.created': 'session',
  'sandbox-orchestrator.session.shared': 'session',
  'sandbox-orchestrator.session.unshared': 'session',
  'sandbox-orchestrator.session.agent_joined': 'session',
  'sandbox-orchestrator.session.agent_left': 'session',
  'sandbox-orchestrator.session.archived': 'session',
  'sandbox-orchestrator.sandbox.created': 'session',
  'sandbox-orchestrator.sandbox.stopped': 'session',
  'sandbox-orchestrator.sandbox.deleted': 'session',
  'sandbox-orchestrator.sandbox.exec_started': 'tool_call',
  'sandbox-orchestrator.sandbox.exec_finished': 'tool_call',
  'sandbox-orchestrator.sandbox.exec_refused': 'tool_call',
  'sandbox-orchestrator.sandbox.usage_recorded': 'tool_call',
  'sandbox-orchestrator.usage.recorded': 'tool_call',
  'sandbox-orchestrator.sandbox.file_uploaded': 'tool_call',
  'sandbox-orchestrator.sandbox.file_downloaded': 'tool_call',
  'sandbox-orchestrator.egress.decisions_recorded': 'tool_call',
  'sandbox-orchestrator.egress_rules.set': 'permission_change',
  'sandbox-orchestrator.egress_rules.removed': 'permission_change',
  'sandbox-orchestrator.tenant_quotas.set': 'admin_configuration',
  'sandbox-orchestrator.tenant_quotas.removed': 'admin_configuration',
};

/** What each class covers (docs/action-classes.md). */
export const ACTION_CLASS_DESCRIPTIONS: Readonly<Record<ActionClass, string>> = {
  authentication: 'sign-in, sign-out, failures, MFA, agent tokens issued, token and session revocation',
  permission_change: 'roles, assignments, policies, approvals, attributes, allow-lists, team memberships and agents suspended or retired: what changes who may do what',
  credential_lifecycle: 'secrets, keys, API keys and leases: create, read, rotate, revoke, destroy',
  session: 'agent sessions: create, share, unshare, agents joining and leaving, archive',
  tool_call: 'tool calls by agents, execute_code included',
  model_io: 'prompts to and completions from models',
  data_export: 'reads and exports of the audit log itself, and other bulk data exports',
  admin_configuration: 'tenants, identity providers, users, teams, agents registered and their guides, platform settings, erasures',
  platform_operations: "the platform's own life (service instances starting)",
};

/** The docs table (docs/action-classes.md), generated from the table above. */
export function actionClassesMarkdown(): string {
  const lines = [
    '# Audit action classes',
    '',
    '<!-- Generated from services/audit/src/coverage/action-classes.ts by',
    '     `node services/audit/bin/action-classes-doc.js` (after a build); coverage.unit.spec.ts',
    '     fails when this file is out of date or a service emits a type missing here. -->',
    '',
    '| class | covers |',
    '|---|---|',
    ...ACTION_CLASSES.map((c) => `| \`${c}\` | ${ACTION_CLASS_DESCRIPTIONS[c]} |`),
    '',
    '| event type | class |',
    '|---|---|',
    ...Object.keys(EVENT_TYPE_CLASSES)
      .sort()
      .map((t) => `| \`${t}\` | \`${EVENT_TYPE_CLASSES[t]}\` |`),
    '',
  ];
  return lines.join('\n');
}

export function actionClassOf(eventType: string): ActionClass | typeof UNCLASSIFIED {
  return EVENT_TYPE_CLASSES[eventType] ?? UNCLASSIFIED;
}

/** The event types of one or more classes (query filter). */
export function eventTypesOf(classes: readonly string[]): string[] {
  return Object.entries(EVENT_TYPE_CLASSES)
    .filter(([, c]) => classes.includes(c))
    .map(([t]) => t);
}
