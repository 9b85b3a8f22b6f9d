import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ACCESS_TOKEN_ISSUER, audienceOf } from '@palisade/auth-verifier';
import { SERVICE_NAMES } from '@palisade/contracts';
import type { KeyRing } from '../keys/signing-keys.service';

export const REFRESH_TOKEN_PREFIX = 'prt_';
const REFRESH_TOKEN = /^prt_[A-Za-z0-9_-]{43}$/;

/** Every service's audience: what a user's token is for unless it asks for fewer. */
export const ALL_AUDIENCES = SERVICE_NAMES.map(audienceOf);

/** Provisioning tenants: held only through the `platform-admin` role, which only the bootstrap grants. */
export const PLATFORM_ADMIN_SCOPE = 'platform:admin';
export const PLATFORM_ADMIN_ROLE = 'platform-admin';
/** Reads every tenant's audit log (`audit:read:all`): granted to users of the operator's tenant by the operator only. */
export const PLATFORM_AUDITOR_ROLE = 'platform-auditor';
/** Scopes of platform roles: held by signed-in people only, never by an API key. */
export const PLATFORM_SCOPES: readonly string[] = ['platform:admin', 'audit:read:all'];
/**
 * Scopes held by signed-in people only: no service token and no service-account API key
 * ever carries one, whatever a grant table or a caller asks (a hard deny list, checked
 * after every table): platform scopes, erasure, signing-key administration and reading
 * every tenant's audit log.
 */
export function isReservedForPeople(scope: string): boolean {
  return scope.startsWith('platform:') || scope.endsWith(':erase') || scope === 'auth:keys' || scope === AGENTS_MANAGE_SCOPE || PLATFORM_SCOPES.includes(scope);
}

/**
 * Registering agents and managing one's own (suspend, resume, retire, keys, guide): held
 * by the tenant's members and admins, by people only (never on a token of an agent or a
 * service account: `isReservedForPeople`).
 */
export const AGENTS_MANAGE_SCOPE = 'agents:manage';
/** Roles no tenant administrator, directory or identity provider can give or take away. */
export const PLATFORM_ROLES: readonly string[] = [PLATFORM_ADMIN_ROLE, PLATFORM_AUDITOR_ROLE];

/**
 * The tenant administrator administers its tenant's policies in the policy service too
 * (roles, assignments, rules): without it nobody could write a tenant's first rule, and
 * services deciding through the policy service (credential) would deny everything.
 */
export const POLICY_ADMIN_SCOPE = 'policy:admin';

/**
 * Roles a tenant gives its users (directly or through directory / IdP groups):
 * `admin` administers the tenant (its users and providers, its policies, its SIEM feeds),
 * `auditor` reads the tenant's audit log, `billing` reads the tenant's usage reports and
 * budget status and manages its budgets and price tables (in the billing service),
 * `member` holds no administrative scope. Members and admins register and manage their
 * own agents (`agents:manage`).
 */
export const TENANT_ROLES = ['admin', 'member', 'auditor', 'billing'] as const;
export type TenantRole = (typeof TENANT_ROLES)[number];

/**
 * Scopes the roles grant: in auth's own API, the policy service's administration and the
 * audit service (the tenant's SIEM feeds for an admin; reading the tenant's audit log for
 * an auditor: separation of duties, an admin does not read the log by being one).
 */
export function scopesOf(roles: readonly string[], operator: boolean): string[] {
  const scopes = new Set<string>();
  if (roles.includes('admin')) {
    scopes.add('auth:admin');
    scopes.add(POLICY_ADMIN_SCOPE);
    scopes.add('audit:admin');
    if (operator) scopes.add('auth:keys');
  }
  if (roles.includes('admin') || roles.includes('member')) scopes.add(AGENTS_MANAGE_SCOPE);
  if (roles.includes('auditor')) scopes.add('audit:read');
  // the billing service's tenant-scoped administration (a tenant admin holds it through `auth:admin`)
  if (roles.includes('billing')) {
    scopes.add('billing:read');
    scopes.add('billing:admin');
  }
  // the tenant's auditor admin (both roles, e.g. its data protection officer) erases a data
  // subject of the tenant from the audit log (audit's DELETE /v1/audit/subjects/:id)
  if (roles.includes('auditor') && roles.includes('admin')) scopes.add('audit:erase');
  if (roles.includes(PLATFORM_ADMIN_ROLE)) scopes.add(PLATFORM_ADMIN_SCOPE);
  if (roles.includes(PLATFORM_AUDITOR_ROLE)) scopes.add('audit:read:all');
  return [...scopes];
}

/** A refresh token: 256 random bits with a recognisable prefix; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: Buffer } {
  const token = `${REFRESH_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function isRefreshTokenShaped(token: string): boolean {
  return REFRESH_TOKEN.test(token);
}

export interface AccessTokenRequest {
  tenantId: string;
  subject: string;
  principalType: 'user' | 'agent' | 'service';
  audience: readonly string[];
  scopes: readonly string[];
  sessionId?: string;
  /** For an agent: the user it acts for (`act: { sub }`, RFC 8693). */
  actingFor?: string;
  /** Team ids, the department (primary) first: `teams` and `dept`. */
  teams?: readonly string[];
  /** Token id, when the caller recorded it first (an agent token's event names it). */
  jti?: string;
  /** RFC 8705 x5t#S256 of the client certificate the token is bound to. */
  certificateThumbprint?: string;
  /** The token may not outlive this instant (ms), e.g. the API key it was exchanged for. */
  notAfterMs?: number;
}

/** Signs the access tokens of the contract in @palisade/auth-verifier. */
export class TokenIssuer {
  constructor(
    private readonly keys: Pick<KeyRing, 'sign'>,
    readonly ttlSec: number,
  ) {}

  async issue(r: AccessTokenRequest, now = Date.now()): Promise<{ accessToken: string; expiresIn: number }> {
    const issuedMs = Math.floor(now);
    const iat = Math.floor(issuedMs / 1000);
    const exp = Math.min(iat + this.ttlSec, r.notAfterMs === undefined ? Infinity : Math.floor(r.notAfterMs / 1000));
    const claims: Record<string, unknown> = {
      iss: ACCESS_TOKEN_ISSUER,
      sub: r.subject,
      aud: r.audience.length === 1 ? r.audience[0] : [...r.audience],
      iat,
      iat_ms: issuedMs,
      exp,
      jti: r.jti ?? randomUUID(),
      tid: r.tenantId,
      ptp: r.principalType,
      scp: [...r.scopes],
    };
    if (r.sessionId) claims.sid = r.sessionId;
    if (r.actingFor) claims.act = { sub: r.actingFor };
    if (r.teams?.length) {
      claims.teams = [...r.teams];
      claims.dept = r.teams[0];
    }
    if (r.certificateThumbprint) claims.cnf = { 'x5t#S256': r.certificateThumbprint };
    return { accessToken: await this.keys.sign(claims), expiresIn: exp - iat };
  }
}
