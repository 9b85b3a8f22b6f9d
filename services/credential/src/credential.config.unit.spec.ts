import { loadCredentialConfig } from './credential.config';

const base = { CREDENTIAL_MASTER_KEY_FILE: '/nonexistent/master.key' };

describe('loadCredentialConfig: CREDENTIAL_ACCESS_POLICY', () => {
  it('defaults to scopes and accepts policy', () => {
    expect(loadCredentialConfig(base).CREDENTIAL_ACCESS_POLICY).toBe('scopes');
    const c = loadCredentialConfig({ ...base, CREDENTIAL_ACCESS_POLICY: 'policy', CREDENTIAL_POLICY_TIMEOUT_MS: '500' });
    expect([c.CREDENTIAL_ACCESS_POLICY, c.CREDENTIAL_POLICY_TIMEOUT_MS]).toEqual(['policy', 500]);
  });

  it('refuses anything else, naming the variable', () => {
    expect(() => loadCredentialConfig({ ...base, CREDENTIAL_ACCESS_POLICY: 'opa' })).toThrow(/CREDENTIAL_ACCESS_POLICY/);
    expect(() => loadCredentialConfig({ ...base, CREDENTIAL_POLICY_TIMEOUT_MS: '0' })).toThrow(/CREDENTIAL_POLICY_TIMEOUT_MS/);
  });
});
