import { PalisadeError, type Principal } from '@palisade/contracts';

/**
 * Who may see and change the tenant's budgets, price tables and usage reports, from the
 * token's scopes: the tenant's administrators (`auth:admin`, auth's `admin` role) and
 * holders of auth's `billing` role (`billing:admin` changes and reads, `billing:read` only
 * reads; an API key may carry just the latter). Agents never do: an agent reads only its
 * own remaining budget (`GET /v1/budgets/me`). Everything is in the caller's tenant.
 */
export function assertBillingAccess(principal: Principal, need: 'read' | 'admin'): void {
  if (principal.type === 'agent') throw new PalisadeError('forbidden', 'an agent reads only its own remaining budget (GET /v1/budgets/me)');
  const scopes = principal.scopes ?? [];
  const ok = scopes.includes('auth:admin') || scopes.includes('billing:admin') || (need === 'read' && scopes.includes('billing:read'));
  if (!ok) throw new PalisadeError('forbidden', `the token lacks the scope billing:${need} (auth's billing role) or auth:admin`);
}
