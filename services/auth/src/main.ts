import { main, packageVersion } from '@palisade/service-kit';
import { AuthModule } from './auth.module';
import { sessionsMigration } from './sessions/sessions.migration';
import { apiKeySponsorMigration, apiKeysMigration } from './api-keys/api-keys.migration';
import { identityProvidersMigration, idpSecretRefsMigration } from './identity-providers/identity-providers.migration';
import { ssoMigration } from './sso/sso.migration';
import { agentsMigration } from './agents/agents.migration';
import { teamsMigration } from './teams/teams.migration';
import { mfaMigration } from './mfa/mfa.migration';
import { signingKeysMigration } from './keys/signing-keys.migration';
import { signInMigration } from './sign-in/sign-in.migration';
import { tenantsMigration } from './tenants/tenants.migration';
import { usersMigration } from './users/users.migration';

main({
  name: 'auth',
  version: packageVersion(__dirname),
  description: 'Who you are: sign-in (password + TOTP, OIDC, SAML 2.0, LDAP/AD), API keys, teams, agents and agent tokens, short-lived revocable tokens, service identities.',
  module: AuthModule,
  migrations: [tenantsMigration, usersMigration, signInMigration, sessionsMigration, signingKeysMigration, mfaMigration, apiKeysMigration, identityProvidersMigration, ssoMigration, idpSecretRefsMigration, apiKeySponsorMigration, teamsMigration, agentsMigration],
});
