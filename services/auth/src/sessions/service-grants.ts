import { audienceOf } from '@palisade/auth-verifier';
import { PalisadeError, type ServiceName } from '@palisade/contracts';
import { isReservedForPeople } from './token-issuer';

export interface ServiceGrant {
  /** Audiences (`palisade:<service>`) the service may ask a token for. */
  audiences: readonly string[];
  /** Scopes it may ask for. */
  scopes: readonly string[];
}

/**
 * What each Palisade service may get from `POST /v1/service-tokens`: least privilege,
 * reviewed row by row in services/auth/README.md ("Service tokens"). Today services call
 * each other with their certificates (decisions, vault reads); a token is only what a row
 * below allows, and never a scope `isReservedForPeople` names, even if a row said so.
 */
export const SERVICE_GRANTS: Readonly<Record<ServiceName, ServiceGrant>> = {
  auth: { audiences: [audienceOf('credential')], scopes: [] },
  policy: { audiences: [], scopes: [] },
  credential: { audiences: [audienceOf('policy')], scopes: ['policy:decide'] },
  'sandbox-orchestrator': { audiences: [audienceOf('policy')], scopes: ['policy:decide'] },
  audit: { audiences: [], scopes: [] },
  'llm-router': { audiences: [audienceOf('policy'), audienceOf('billing')], scopes: ['policy:decide', 'billing:usage'] },
  billing: { audiences: [], scopes: [] },
};

/**
 * The rule of `POST /v1/service-tokens`: every audience and scope asked for must be in the
 * caller's row, and no scope reserved for people, ever. 403 naming the first one refused.
 */
export function assertServiceGrant(
  service: ServiceName,
  request: { audience: readonly string[]; scopes: readonly string[] },
  grants: Readonly<Record<string, ServiceGrant | undefined>> = SERVICE_GRANTS,
): void {
  const grant = grants[service] ?? { audiences: [], scopes: [] };
  for (const scope of request.scopes) {
    if (isReservedForPeople(scope)) throw new PalisadeError('forbidden', `scope ${scope} is never given to a service`);
    if (!grant.scopes.includes(scope)) throw new PalisadeError('forbidden', `scope ${scope} is not granted to service ${service}`);
  }
  for (const audience of request.audience) {
    if (!grant.audiences.includes(audience)) throw new PalisadeError('forbidden', `audience ${audience} is not granted to service ${service}`);
  }
}
