/**
 * Nest injection tokens of the sandbox-orchestrator's features. A feature's service
 * exists only once the platform is connected (the event store, the data source and NATS
 * exist then), so a controller receives a `Ready<…>` getter of the one service it calls
 * (503 before), never the platform.
 */
export type Ready<T> = () => T;

export const SANDBOX_CONFIG = Symbol('sandbox-orchestrator.config');
export const POLICY_CLIENT = Symbol('sandbox-orchestrator.policy-client');
export const SESSIONS_SERVICE = Symbol('sandbox-orchestrator.sessions-service');
export const SANDBOXES_SERVICE = Symbol('sandbox-orchestrator.sandboxes-service');
export const EGRESS_RULES_SERVICE = Symbol('sandbox-orchestrator.egress-rules-service');
export const TENANT_QUOTAS_SERVICE = Symbol('sandbox-orchestrator.tenant-quotas-service');
