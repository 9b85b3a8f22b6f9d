import { z } from 'zod';
import type { ActorType } from './envelope';

/** A team's id, as auth makes them and principals carry them (`teams`): what any service validates a team id against. */
export const teamIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a team id: lower case letters, digits, "-", at most 63');

/**
 * Who is calling, once authenticated (by the auth service's verifier library: a
 * token, an API key, or a service's client certificate). Every tenant-scoped query
 * takes `tenantId` from here, never from the request body.
 */
export interface Principal {
  type: Exclude<ActorType, 'system'>;
  id: string;
  tenantId: string;
  /** For an agent: the user it acts for (its rights never exceed theirs). */
  actingFor?: string;
  /** Least-privilege scopes of the credential used (API keys, service tokens). */
  scopes?: readonly string[];
  /** Session the token belongs to (revocation, audit). */
  sessionId?: string;
  /** Teams (ids) the principal belongs to: a user's memberships, an agent's one team (ABAC `subject.teams`). */
  teams?: readonly string[];
  /** Primary team: a user's first, an agent's own (ABAC `subject.department`). */
  department?: string;
}

/** Checks a request's credentials; implemented by the auth verifier library. */
export interface PrincipalResolver {
  /** The principal, or a PalisadeError 'unauthenticated' naming what is wrong. */
  resolve(credentials: { authorization?: string; apiKey?: string; clientSpiffeId?: string }): Promise<Principal>;
}
