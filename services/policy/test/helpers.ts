import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, audienceOf } from '@palisade/auth-verifier';
import { httpsCaller, TestTokenIssuer } from '@palisade/testing';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON, or the text when it is not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** HTTPS to a local service, with an access token or a client certificate (the one client of @palisade/testing). */
export async function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string; cert?: string; key?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const reply = await httpsCaller(port)(path, { method, ...options });
  return { status: reply.status, headers: reply.headers, body: reply.json ?? reply.body };
}

/**
 * Tokens for the policy service, signed as the auth service would (see TestTokenIssuer),
 * and agent tokens as they are presented to another service (`forwardedTo`), which
 * forwards them with a decision request: one JWKS holds the keys of both.
 */
export class TestIssuer {
  private constructor(
    private readonly issuer: TestTokenIssuer,
    private readonly others: ReadonlyMap<string, TestTokenIssuer>,
    private readonly teamed: { key: KeyLike; kid: string; jwk: object },
  ) {}

  get jwks(): string {
    const keys = [this.issuer, ...this.others.values()].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys);
    return JSON.stringify({ keys: [...keys, this.teamed.jwk] });
  }

  static async create(forwardingServices: readonly string[] = ['credential', 'llm-router', 'sandbox-orchestrator']): Promise<TestIssuer> {
    const others = new Map<string, TestTokenIssuer>();
    for (const service of forwardingServices) others.set(service, await TestTokenIssuer.create(audienceOf(service)));
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = `test-teams-${randomUUID()}`;
    const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'EdDSA' };
    return new TestIssuer(await TestTokenIssuer.create(audienceOf('policy')), others, { key: privateKey, kid, jwk });
  }

  /**
   * A person's token with the teams and department auth puts in it (`teams`, `dept`),
   * for `service` (the policy service itself, or a service that forwards it).
   */
  userToken(service: string, p: { tenantId: string; id: string; teams?: string[]; dept?: string; scopes?: string[] }): Promise<string> {
    return new SignJWT({ tid: p.tenantId, ptp: 'user', ...(p.scopes ? { scp: p.scopes } : {}), ...(p.teams ? { teams: p.teams } : {}), ...(p.dept ? { dept: p.dept } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.teamed.kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(audienceOf(service))
      .setSubject(p.id)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.teamed.key);
  }

  token(p: { tenantId: string; id: string; type?: 'user' | 'agent'; actingFor?: string; scopes?: string[] }): Promise<string> {
    return this.issuer.token({ sub: p.id, tid: p.tenantId, ptp: p.type ?? 'user', act: p.actingFor ? { sub: p.actingFor } : undefined, scp: p.scopes });
  }

  /** An agent's token for `service` (RFC 8693 `act`), as that service would forward it to the policy service. */
  agentToken(service: string, p: { tenantId: string; id: string; actingFor?: string }): Promise<string> {
    const issuer = this.others.get(service);
    if (!issuer) throw new Error(`no issuer for ${service}`);
    return issuer.token({ sub: p.id, tid: p.tenantId, ptp: 'agent', act: p.actingFor ? { sub: p.actingFor } : undefined });
  }
}
