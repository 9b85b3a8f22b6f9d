import { audienceOf } from '@palisade/auth-verifier';
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
  ) {}

  get jwks(): string {
    const keys = [this.issuer, ...this.others.values()].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys);
    return JSON.stringify({ keys });
  }

  static async create(forwardingServices: readonly string[] = ['credential', 'llm-router', 'sandbox-orchestrator']): Promise<TestIssuer> {
    const others = new Map<string, TestTokenIssuer>();
    for (const service of forwardingServices) others.set(service, await TestTokenIssuer.create(audienceOf(service)));
    return new TestIssuer(await TestTokenIssuer.create(audienceOf('policy')), others);
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
