import { AGENTS_MANAGE_SCOPE, isReservedForPeople, PLATFORM_SCOPES } from '../sessions/token-issuer';
import type { ApiKeyOwner } from './api-keys.events';

/**
 * What the creator of a key may put on it: never more than the creator holds; never a
 * platform scope (provisioning and all-tenant reading are for signed-in people); and on a
 * service account's key (an agent's) nothing `isReservedForPeople` (no `auth:keys`, no
 * `*:erase`, no `audit:read:all`, no `platform:*`).
 */
export function grantableScopes(owner: Pick<ApiKeyOwner, 'type'>, creatorScopes: readonly string[]): string[] {
  return creatorScopes.filter(
    (s) => !PLATFORM_SCOPES.includes(s) && !(owner.type !== 'user' && isReservedForPeople(s)) && !(owner.type === 'agent' && isAdministrative(s)),
  );
}

/**
 * Scopes that administer something (`*:admin`, `agents:manage`): a registered agent's key
 * never carries one, since agents administer nothing (the services refuse them anyway;
 * this keeps the token from even claiming it).
 */
export function isAdministrative(scope: string): boolean {
  return scope.endsWith(':admin') || scope === AGENTS_MANAGE_SCOPE;
}

/**
 * The scopes a key carries now, at each use: its own, narrowed to what the living person
 * it answers to holds today (the user who owns it, or a service account's sponsor), and
 * capped as at creation. Undefined when that person is disabled, gone or unknown: the key
 * no longer works.
 */
export function effectiveKeyScopes(key: { owner: Pick<ApiKeyOwner, 'type'>; scopes: readonly string[] }, personScopes: readonly string[] | undefined): string[] | undefined {
  if (!personScopes) return undefined;
  const grantable = grantableScopes(key.owner, personScopes);
  return key.scopes.filter((s) => grantable.includes(s));
}
