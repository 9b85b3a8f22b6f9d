import type { ServiceName } from '@palisade/contracts';
import type { NatsConnection, NatsLogger, RpcSigner } from '@palisade/nats';
import { PolicyClient, type PolicyClientOptions } from './client';

/**
 * What a service's platform offers (libs/service-kit's Platform has it): hooks, the NATS
 * connection once connected, and the service's identity, which signs the requests that
 * redeem an approval.
 */
export interface PolicyClientHost {
  afterConnect(hook: () => Promise<void>): void;
  beforeClose(hook: () => Promise<void>): void;
  readonly nats: NatsConnection | undefined;
  readonly logger: NatsLogger;
  readonly options: { readonly identity: RpcSigner };
}

/**
 * A service's policy client, built on its platform's NATS connection once connected,
 * its cache following policy events through the durable `<service>-policy-cache`
 * (deploy/local/nats-durables.txt), closed when the service stops. The getter answers
 * undefined until then: callers refuse (fail-closed).
 */
export function policyClientOnceConnected(host: PolicyClientHost, service: ServiceName, options: Omit<PolicyClientOptions, 'nc' | 'logger' | 'signAs'> = {}): () => PolicyClient | undefined {
  let client: PolicyClient | undefined;
  host.afterConnect(async () => {
    if (client) return;
    const c = new PolicyClient({ ...options, nc: host.nats!, logger: host.logger, signAs: host.options.identity });
    try {
      await c.listen(service);
    } catch (error) {
      await c.close(); // retried as a startup step: leave no subscription behind
      throw error;
    }
    client = c;
  });
  host.beforeClose(async () => client?.close());
  return () => client;
}
