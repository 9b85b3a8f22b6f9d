import { DeciderSpecification } from '@palisade/eventsourcing';
import { passwordProblems, tenantDecider } from './tenants.decider';
import { DEFAULT_PASSWORD_POLICY } from './tenants.events';

const given = DeciderSpecification.for(tenantDecider);
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'u-1' }, now: new Date('2026-01-01T00:00:00Z') };
const created = { type: 'auth.tenant.created' as const, data: { tenantId: 'acme', name: 'Acme', passwordPolicy: DEFAULT_PASSWORD_POLICY, mfaRequired: false } };

describe('tenant decider', () => {
  it('creates a tenant once, with the default password policy', () => {
    given([]).when({ type: 'CreateTenant', data: { tenantId: 'acme', name: 'Acme' }, metadata }).then([created]);
    given([created]).when({ type: 'CreateTenant', data: { tenantId: 'acme', name: 'Acme' }, metadata }).thenThrows('conflict');
  });

  it.each(['system', 'platform', 'admin', 'palisade', 'default', 'root', 'internal', 'System'])('refuses the reserved tenant id %s', (tenantId) => {
    given([]).when({ type: 'CreateTenant', data: { tenantId, name: 'Mine' }, metadata }).thenThrows('validation', `tenantId: "${tenantId}" is reserved`);
  });

  it('changes the policy and the MFA requirement of an existing tenant only', () => {
    const policy = { ...DEFAULT_PASSWORD_POLICY, minLength: 16 };
    given([created])
      .when({ type: 'ChangePasswordPolicy', data: { tenantId: 'acme', passwordPolicy: policy }, metadata })
      .then([{ type: 'auth.tenant.password-policy-changed', data: { tenantId: 'acme', passwordPolicy: policy } }]);
    given([]).when({ type: 'SetMfaRequirement', data: { tenantId: 'acme', mfaRequired: true }, metadata }).thenThrows('not_found');
    given([created])
      .when({ type: 'SetMfaRequirement', data: { tenantId: 'acme', mfaRequired: true }, metadata })
      .then([{ type: 'auth.tenant.mfa-requirement-changed', data: { tenantId: 'acme', mfaRequired: true } }]);
    given([created]).when({ type: 'SetMfaRequirement', data: { tenantId: 'acme', mfaRequired: false }, metadata }).then([]);
  });

  it('checks length and character classes of a password', () => {
    expect(passwordProblems('Short1!', DEFAULT_PASSWORD_POLICY)).toEqual(['must be at least 12 characters']);
    expect(passwordProblems('alllowercaseletters', DEFAULT_PASSWORD_POLICY)).toEqual([expect.stringContaining('at least 3 of')]);
    expect(passwordProblems('Correct-Horse-7', DEFAULT_PASSWORD_POLICY)).toEqual([]);
  });
});
