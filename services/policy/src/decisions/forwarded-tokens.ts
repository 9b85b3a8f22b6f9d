import { Inject, Injectable } from '@nestjs/common';
import { AccessTokenVerifier, audienceOf, signingKeysOf } from '@palisade/auth-verifier';
import type { Principal, ServiceName } from '@palisade/contracts';
import { PLATFORM, type Platform } from '@palisade/service-kit';

/**
 * Verifies the access tokens other services forward with a decision about an agent: the
 * auth service's signature (the keys this service's own edge uses), issuer, expiry,
 * revocation (this service's revocation feed) and the audience of the service that asks,
 * so a service can only speak for agents whose tokens were presented to it. The
 * certificate binding was checked by that service on the agent's connection.
 */
@Injectable()
export class ForwardedTokens {
  private readonly verifiers = new Map<ServiceName, AccessTokenVerifier>();

  constructor(@Inject(PLATFORM) private readonly platform: Platform) {}

  async principalOf(token: string, askedBy: ServiceName): Promise<Principal> {
    let verifier = this.verifiers.get(askedBy);
    if (!verifier) {
      const { config, identity } = this.platform.options;
      verifier = new AccessTokenVerifier({
        keys: this.keys(config.AUTH_JWKS, config.AUTH_JWKS_URL, identity.current().caPem),
        audience: audienceOf(askedBy),
        revocations: this.platform.revocations,
      });
      this.verifiers.set(askedBy, verifier);
    }
    return (await verifier.verify(token, { certificateBindingChecked: true })).principal;
  }

  private sharedKeys: ReturnType<typeof signingKeysOf> | undefined;

  private keys(jwks: string | undefined, url: string, caPem: string) {
    return (this.sharedKeys ??= signingKeysOf({ jwks, url, caPem }));
  }
}
