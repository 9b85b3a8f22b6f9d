/**
 * Nest injection tokens of the credential features. The services exist only once the
 * platform is connected, so a controller receives a `Ready<…>` getter of the one
 * service it calls (answering 503 "the vault is starting" before), never the runtime.
 */
export type Ready<T> = () => T;

export const KEYRING_SERVICE = Symbol('credential.keyring-service');
export const SECRETS_SERVICE = Symbol('credential.secrets-service');
export const LEASES_SERVICE = Symbol('credential.leases-service');
export const SERVICE_SECRETS_SERVICE = Symbol('credential.service-secrets-service');
