/**
 * Nest injection tokens of the llm-router's features. A feature's service exists only
 * once the platform is connected (event store, data source, NATS), so a controller
 * receives a `Ready<…>` getter of the one service it calls (503 before), never the platform.
 */
export type Ready<T> = () => T;

export const ROUTER_CONFIG = Symbol('llm-router.config');
export const CATALOG_SERVICE = Symbol('llm-router.catalog-service');
export const COMPLETIONS_SERVICE = Symbol('llm-router.completions-service');
export const GUARD_POLICY_SERVICE = Symbol('llm-router.guard-policy-service');
export const HELD_ANSWERS_SERVICE = Symbol('llm-router.held-answers-service');
