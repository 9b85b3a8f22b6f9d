import { PalisadeError, type Principal } from '@palisade/contracts';

/**
 * Who may do what with credentials. The vault asks this port before every action; the
 * default below reads token scopes and the principal type; `PolicyAccessPolicy`
 * (policy-access-policy.ts) asks the policy service (RBAC/ABAC, agent intersection,
 * tool allowlists) behind the same port.
 *
 *   create       store a new secret
 *   read         see a secret's metadata and history (never its value)
 *   rotate       put a new version (by value or by a rotator)
 *   use          obtain a lease for a tool execution (the value goes to the tool, not the caller)
 *   revoke       revoke a secret
 *   delete       hard delete (crypto-shredding)
 *   manage_keys  the tenant's key ring: BYOK import/reference, KEK rotation and revocation, cipher
 */
export const CREDENTIAL_ACTIONS = ['create', 'read', 'rotate', 'use', 'revoke', 'delete', 'manage_keys'] as const;
export type CredentialAction = (typeof CREDENTIAL_ACTIONS)[number];

export interface AccessRequest {
  principal: Principal;
  action: CredentialAction;
  /** The secret acted on, when there is one (already known to be the principal's tenant's). */
  secret?: { secretId: string; scopes: readonly string[] };
  /** For `use`: the tool the lease is for. */
  tool?: string;
  /**
   * The `Authorization` header as the caller presented it to this service. For an agent
   * its bearer token is forwarded to the policy service (`subjectOf`), which takes the
   * agent and the user it acts for from that token, never from what we say. Carried on
   * `read` and `use`, the only actions an agent may reach the policy with (the others are
   * refused to agents before anyone is asked). Never logged, recorded or put in an event.
   */
  authorization?: string;
}

/** `unavailable`: nobody could decide (the policy service is down): refused, but worth retrying. */
export type AccessDecision = { allowed: true } | { allowed: false; reason: string; unavailable?: boolean };

export interface CredentialAccessPolicy {
  decide(request: AccessRequest): Promise<AccessDecision>;
}

/** Scope a token needs for an action: `credential:<action>`. */
export const scopeFor = (action: CredentialAction) => `credential:${action}`;
/** Grants every administrative action (not `use`: administrators do not consume credentials). */
export const ADMIN_SCOPE = 'credential:admin';

/** What an agent may ever do, whatever its token says: it consumes credentials and sees ids. */
const AGENT_ACTIONS: ReadonlySet<CredentialAction> = new Set(['use', 'read']);

/**
 * What no policy may grant, checked locally before anything else (defence in depth):
 * an agent never creates, rotates, revokes, deletes or manages keys (it cannot change
 * the credentials it is governed by), and a lease needs a tool within the secret's
 * scopes (`tool:<name>`). The refusal's reason, or undefined.
 */
export function invariantRefusal({ principal, action, secret, tool }: AccessRequest): string | undefined {
  if (principal.type === 'agent' && !AGENT_ACTIONS.has(action)) return `an agent may not ${action.replace('_', ' ')} credentials`;
  if (action === 'use') {
    if (!tool || !secret) return 'a lease names a secret and a tool';
    if (!secret.scopes.includes(`tool:${tool}`)) return `the secret is not scoped to tool ${tool}`;
  }
  return undefined;
}

/**
 * The default policy, deny by default:
 * - the token must carry `credential:<action>` (or `credential:admin` for actions other than `use`);
 * - agents may only `read` and `use`, never create, rotate, revoke, delete or manage keys
 *   (an agent cannot change the credentials it is governed by);
 * - `use` needs the tool to be within the secret's scopes (`tool:<name>`).
 */
export class ScopeAccessPolicy implements CredentialAccessPolicy {
  async decide(request: AccessRequest): Promise<AccessDecision> {
    const { principal, action } = request;
    if (principal.type === 'agent' && !AGENT_ACTIONS.has(action)) return { allowed: false, reason: invariantRefusal(request)! };
    const scopes = principal.scopes ?? [];
    const granted = scopes.includes(scopeFor(action)) || (action !== 'use' && scopes.includes(ADMIN_SCOPE));
    if (!granted) return { allowed: false, reason: `the token lacks the scope ${scopeFor(action)}` };
    const refused = invariantRefusal(request);
    return refused ? { allowed: false, reason: refused } : { allowed: true };
  }
}

/** Asks the policy and throws 'forbidden' with its reason ('unavailable' when nobody could decide). */
export async function authorize(policy: CredentialAccessPolicy, request: AccessRequest): Promise<void> {
  const decision = await policy.decide(request);
  if (!decision.allowed) throw new PalisadeError(decision.unavailable ? 'unavailable' : 'forbidden', decision.reason);
}
