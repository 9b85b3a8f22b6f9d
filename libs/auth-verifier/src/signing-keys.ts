import { Agent } from 'node:https';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/**
 * The auth service's token signing keys: a local JWKS (JSON) when given, else its HTTPS
 * endpoint (TLS 1.3 under the platform CA, cached, refreshed on an unknown kid). For a
 * service that verifies tokens besides its own edge's (the policy service verifies the
 * agent tokens other services forward with a decision request).
 */
export function signingKeysOf(source: { jwks?: string; url: string; caPem: string }): JWTVerifyGetKey {
  if (source.jwks) return createLocalJWKSet(JSON.parse(source.jwks) as JSONWebKeySet);
  return createRemoteJWKSet(new URL(source.url), {
    agent: new Agent({ ca: source.caPem, minVersion: 'TLSv1.3' }),
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
}
