import { PalisadeError, type ServiceName } from '@palisade/contracts';

/**
 * Secrets a Palisade service keeps for itself in the vault (not for tools: no lease, no
 * `tool:` scope). Each caller owns one scope; a secret outside it does not exist for that
 * caller (404, like another tenant's), so a service reads only what it stored.
 */
export const SERVICE_SECRET_SCOPES: Readonly<Partial<Record<ServiceName, string>>> = { auth: 'auth:idp', 'llm-router': 'llm-router:provider-key' };

export function serviceSecretScope(caller: ServiceName): string | undefined {
  return SERVICE_SECRET_SCOPES[caller];
}

/**
 * Who may ask for service secrets at all: a service that owns a scope (auth, llm-router). NATS
 * permissions already admit only those to the methods (deploy/local/nats-requests.txt);
 * this is the check behind them. `caller` is the service whose inbox the answer goes to.
 */
export function admitCaller(caller: ServiceName | undefined): ServiceName {
  if (caller && serviceSecretScope(caller)) return caller;
  throw new PalisadeError('forbidden', caller ? `${caller} keeps no secrets in the vault` : 'service secrets are answered only to a service’s own inbox');
}

interface Existing {
  scopes: readonly string[];
  state: string;
}

export type PutDecision = { do: 'create'; scope: string } | { do: 'rotate' } | { do: 'refuse'; code: 'forbidden' | 'conflict' | 'illegal_state'; message: string };

/** PUT by name: create it, rotate it, or refuse (a name taken by a secret the caller does not own, a revoked one). */
export function decidePut(caller: ServiceName, existing: Existing | undefined): PutDecision {
  const scope = serviceSecretScope(caller);
  if (!scope) return { do: 'refuse', code: 'forbidden', message: `${caller} keeps no secrets in the vault` };
  if (!existing) return { do: 'create', scope };
  if (!existing.scopes.includes(scope)) return { do: 'refuse', code: 'conflict', message: 'name: a secret of that name exists outside this service’s scope' };
  if (existing.state !== 'active') return { do: 'refuse', code: 'illegal_state', message: 'the secret of that name is revoked: delete it in the vault first' };
  return { do: 'rotate' };
}

export type ReadDecision = { do: 'read' } | { do: 'refuse'; code: 'not_found' | 'illegal_state'; message: string };

/** Read (or delete) by id: only the caller's own scope; anything else is not found. */
export function decideRead(caller: ServiceName, existing: Existing | undefined): ReadDecision {
  const scope = serviceSecretScope(caller);
  if (!scope || !existing || !existing.scopes.includes(scope)) return { do: 'refuse', code: 'not_found', message: 'secret not found' };
  if (existing.state !== 'active') return { do: 'refuse', code: 'illegal_state', message: 'the secret is revoked' };
  return { do: 'read' };
}
