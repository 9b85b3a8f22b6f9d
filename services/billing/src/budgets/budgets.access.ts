import { PalisadeError, type Principal } from '@palisade/contracts';

/**
 * Who may see and change budgets, from the token's scopes: the tenant's administrators
 * (`auth:admin`, which auth's `admin` role gives) and holders of the billing scopes
 * (`billing:admin` changes, `billing:read` reads), which a `billing` role in auth is to
 * give (README, gaps). Agents never administer budgets; they read only their own remaining.
 */
export function assertBillingAccess(principal: Principal, need: 'read' | 'admin'): void {
  if (principal.type === 'agent') throw new PalisadeError('forbidden', 'an agent reads only its own remaining budget (GET /v1/budgets/me)');
  const scopes = principal.scopes ?? [];
  const ok = scopes.includes('auth:admin') || scopes.includes('billing:admin') || (need === 'read' && scopes.includes('billing:read'));
  if (!ok) throw new PalisadeError('forbidden', `the token lacks the scope billing:${need}`);
}
