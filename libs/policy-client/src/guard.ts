import { Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PalisadeError, type Principal } from '@palisade/contracts';
import type { PolicyClient } from './client';
import type { AuthorizeRequest } from './types';

export const REQUIRED_PERMISSION = 'palisade.policy.required';

export interface RequiredPermission {
  action: string;
  resourceType: string;
  /** Route parameter holding the resource id (e.g. `id`). */
  idParam?: string;
}

/** The route needs the policy's allow for this action on this resource type. */
export const RequirePermission = (action: string, resourceType: string, idParam?: string) =>
  SetMetadata(REQUIRED_PERMISSION, { action, resourceType, ...(idParam ? { idParam } : {}) } satisfies RequiredPermission);

interface GuardedRequest {
  principal?: Principal;
  params?: Record<string, string>;
  headers?: Record<string, string | string[] | undefined>;
}

/**
 * The subject of a decision about the caller: an agent's or a person's access token as
 * presented here goes along, and the policy service takes the agent and the user it
 * acts for, or the person, with their teams and department, from it (never from what we
 * say). A service's own identity goes without a token.
 */
export function subjectOf(principal: Principal, authorization: string | undefined): AuthorizeRequest['subject'] {
  if (principal.type === 'service') return { type: principal.type, id: principal.id };
  const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  return token ? { type: principal.type, id: principal.id, token } : { type: principal.type, id: principal.id };
}

/**
 * Asks the policy service before a route runs (after the AuthGuard has set the
 * principal). Only an explicit allow passes; a denial, a required approval, a missing
 * principal or any failure refuses the request (fail-closed).
 */
@Injectable()
export class PolicyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly client: Pick<PolicyClient, 'authorize'>,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const required = this.reflector.getAllAndOverride<RequiredPermission | undefined>(REQUIRED_PERMISSION, [context.getHandler(), context.getClass()]);
    if (!required) return true;
    const req = context.switchToHttp().getRequest<GuardedRequest>();
    const principal = req.principal;
    if (!principal) throw new PalisadeError('forbidden', 'no principal to authorize');
    const request: AuthorizeRequest = {
      tenantId: principal.tenantId,
      subject: subjectOf(principal, typeof req.headers?.authorization === 'string' ? req.headers.authorization : undefined),
      action: required.action,
      resource: { type: required.resourceType, ...(required.idParam && req.params?.[required.idParam] ? { id: req.params[required.idParam] } : {}) },
    };
    let decision;
    try {
      decision = await this.client.authorize(request);
    } catch {
      throw new PalisadeError('forbidden', 'the policy service could not decide');
    }
    if (decision.decision === 'allow') return true;
    if (decision.decision === 'requires_approval') throw new PalisadeError('forbidden', `${required.action} needs an approval`, { actionHash: decision.actionHash });
    throw new PalisadeError('forbidden', decision.reason);
  }
}
