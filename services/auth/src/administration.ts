import { applyDecorators, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { PalisadeError, type Principal } from '@palisade/contracts';

/** The rule's name, in every refusal: agents (registered agents and service accounts) administer nothing. */
export const AGENTS_ADMINISTER_NOTHING = 'agents-administer-nothing';

/**
 * The one check that an agent administers nothing: `agents cannot administer <what>`
 * (403). Used by the `Administers` guard on every administrative controller of auth, so
 * no route has to remember it; a scope on the agent's token changes nothing.
 */
export function refuseAgents(principal: Pick<Principal, 'type'> | undefined, what: string): void {
  if (principal?.type === 'agent') throw new PalisadeError('forbidden', `agents cannot administer ${what} (rule ${AGENTS_ADMINISTER_NOTHING})`, { rule: AGENTS_ADMINISTER_NOTHING });
}

/** Runs after the platform's AuthGuard (controller guards follow global ones), which set the principal. */
class PeopleOnlyGuard implements CanActivate {
  constructor(private readonly what: string) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    refuseAgents(context.switchToHttp().getRequest<{ principal?: Principal }>().principal, this.what);
    return true;
  }
}

/**
 * On a controller (or route): it administers `what` (users, teams, agents …), so agents
 * are refused before any handler runs, whatever scopes their token carries.
 */
export const Administers = (what: string) => applyDecorators(UseGuards(new PeopleOnlyGuard(what)));
