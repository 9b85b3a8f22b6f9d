import { main, packageVersion } from '@palisade/service-kit';
import { AuthModule } from './auth.module';

main({
  name: 'auth',
  version: packageVersion(__dirname),
  description: 'Who you are: sign-in (password + TOTP, OIDC, SAML 2.0, LDAP/AD), API keys, short-lived revocable tokens, service identities.',
  module: AuthModule,
});
