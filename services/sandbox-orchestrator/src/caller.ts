import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { subjectOf } from '@palisade/policy-client';
import type { Request } from 'express';
import type { Caller } from './sessions/sessions.service';

/**
 * The authenticated caller (after the AuthGuard) and, for a person or an agent, the access
 * token it presented here: the policy service takes who they are (an agent's user, teams)
 * from that token, verified for this service's audience, never from what we claim.
 */
export const CurrentCaller = createParamDecorator((_data: unknown, ctx: ExecutionContext): Caller => {
  const req = ctx.switchToHttp().getRequest<Request & { principal?: Principal }>();
  const principal = req.principal;
  if (!principal) throw new PalisadeError('unauthenticated', 'no authenticated principal');
  const authorization = req.header('authorization');
  const { token } = subjectOf(principal, authorization);
  const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  return { principal, ...(token ? { agentToken: token } : {}), ...(bearer ? { token: bearer } : {}) };
});
