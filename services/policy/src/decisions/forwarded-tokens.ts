import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { decodeProtectedHeader } from 'jose';
import { LRUCache } from 'lru-cache';
import { AccessTokenVerifier, audienceOf, signingKeysOf, type AccessTokenClaims, type RevocationList } from '@palisade/auth-verifier';
import { PalisadeError, type Principal, type ServiceName } from '@palisade/contracts';
import { PLATFORM, type Platform } from '@palisade/service-kit';

interface Verified {
  principal: Principal;
  claims: AccessTokenClaims;
  kid: string | undefined;
}

/** Verified tokens kept per instance: a hit costs a map look-up and the revocation check, not a signature. */
const CACHED_TOKENS = 10_000;

/**
 * Verifies the access tokens other services forward with a decision about an agent: the
 * auth service's signature (the keys this service's own edge uses), issuer, expiry,
 * revocation (this service's revocation feed) and the audience of the service that asks,
 * so a service can only speak for agents whose tokens were presented to it. The
 * certificate binding was checked by that service on the agent's connection. A token
 * verified once is remembered (by its SHA-256, never the token itself) until it expires;
 * every use checks expiry and the revocation list again, so a revoked agent, user or key
 * is refused at once.
 */
@Injectable()
export class ForwardedTokens {
  private readonly verifiers = new Map<ServiceName, AccessTokenVerifier>();
  private readonly verified = new LRUCache<string, Verified>({ max: CACHED_TOKENS });
  private readonly revocations: RevocationList;
  private readonly keys: () => ReturnType<typeof signingKeysOf>;

  constructor(@Inject(PLATFORM) platform: Pick<Platform, 'options' | 'revocations'>) {
    this.revocations = platform.revocations;
    let keys: ReturnType<typeof signingKeysOf> | undefined;
    const { config, identity } = platform.options;
    this.keys = () => (keys ??= signingKeysOf({ jwks: config.AUTH_JWKS, url: config.AUTH_JWKS_URL, caPem: identity.current().caPem }));
  }

  async principalOf(token: string, askedBy: ServiceName): Promise<Principal> {
    const key = `${askedBy} ${createHash('sha256').update(token).digest('base64')}`;
    const hit = this.verified.get(key);
    if (hit) {
      if (hit.claims.exp * 1000 <= Date.now()) {
        this.verified.delete(key);
        throw new PalisadeError('unauthenticated', 'access token expired');
      }
      const revoked = this.revocations.reasonRevoked(hit.claims, hit.kid);
      if (revoked) throw new PalisadeError('unauthenticated', `access token rejected: ${revoked}`);
      return hit.principal;
    }
    const { principal, claims } = await this.verifierFor(askedBy).verify(token, { certificateBindingChecked: true });
    this.verified.set(key, { principal, claims, kid: kidOf(token) });
    return principal;
  }

  private verifierFor(askedBy: ServiceName): AccessTokenVerifier {
    let verifier = this.verifiers.get(askedBy);
    if (!verifier) {
      verifier = new AccessTokenVerifier({ keys: this.keys(), audience: audienceOf(askedBy), revocations: this.revocations });
      this.verifiers.set(askedBy, verifier);
    }
    return verifier;
  }
}

/** The signing key id of a token that verified (its protected header). */
function kidOf(token: string): string | undefined {
  const { kid } = decodeProtectedHeader(token);
  return typeof kid === 'string' ? kid : undefined;
}
