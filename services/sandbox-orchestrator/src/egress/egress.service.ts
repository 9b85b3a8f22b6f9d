import { PalisadeError } from '@palisade/contracts';
import type { SandboxEgress, SandboxEgressAttachment } from '../runtime/runtime.port';
import type { EgressAuditBatcher } from './egress.audit';
import { SandboxCa } from './egress.ca';
import type { CredentialLeases } from './egress.credentials';
import { SandboxResolver } from './egress.dns';
import { SandboxProxy, type EgressContextSource } from './egress.proxy';
import { NetnsPool } from './netns-pool';
import { SandboxNetwork, type SandboxLink } from './sandbox-network';

export interface EgressServiceOptions {
  instance: string;
  /** The port the proxy listens on at each sandbox's host address. */
  proxyPort?: number;
  context: EgressContextSource;
  leases: CredentialLeases;
  audit: EgressAuditBatcher;
  resolve?: (host: string) => Promise<string[]>;
  /** Direct HTTP and TLS on the proxy's address (default 80 and 443; 0 leaves one out). */
  transparentPorts?: { http: number; https: number };
  /** Sandbox networks kept prepared ahead (default 4; 0: each sandbox's made at its start). */
  poolSize?: number;
  /** A pool preparation or teardown that failed (retried; a sandbox start then prepares its own). */
  onPoolError?: (error: Error) => void;
}

export const DEFAULT_PROXY_PORT = 3128;
export const DEFAULT_NETNS_POOL_SIZE = 4;

/** A sandbox's way out: its network, its CA, its proxy and resolver listening on the host end. */
interface Endpoint {
  link: SandboxLink;
  ca: SandboxCa;
  proxy: SandboxProxy;
  resolver: SandboxResolver;
  /** The sandbox served (set once, at claim). */
  serving: { sandboxId?: string };
}

/**
 * The egress side of the runtime: per sandbox a network namespace whose only way out is
 * its proxy endpoint, a CA of its own (memory only), the proxy listening there and a
 * resolver answering only the names its rules allow (with the proxy's address).
 *
 * Endpoints are prepared ahead by a pool (network, nftables, CA, listeners bound) and
 * claimed at sandbox start: the claim attaches the sandbox (its rules, its audit, its
 * leases are looked up by that id from then on). An endpoint serves one sandbox and is
 * destroyed with it.
 */
export class EgressService implements SandboxEgress {
  private readonly network: SandboxNetwork;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly pool: NetnsPool<Endpoint>;
  private readonly port: number;

  constructor(private readonly o: EgressServiceOptions) {
    this.port = o.proxyPort ?? DEFAULT_PROXY_PORT;
    const transparent = o.transparentPorts ?? { http: 80, https: 443 };
    this.network = new SandboxNetwork(o.instance, { proxy: this.port, transparent: [transparent.http, transparent.https] });
    this.pool = new NetnsPool({ size: o.poolSize ?? DEFAULT_NETNS_POOL_SIZE, prepare: () => this.prepare(), destroy: (e) => this.destroy(e), onError: o.onPoolError });
  }

  check(): Promise<void> {
    return this.network.check();
  }

  /** Fills the pool (and keeps it full from then on); resolves once it is full or a preparation failed. */
  warm(): Promise<void> {
    return this.pool.warm();
  }

  /** Prepared endpoints waiting for a sandbox. */
  get pooled(): number {
    return this.pool.available;
  }

  /** Stops refilling the pool and removes its waiting entries (shutdown; a restart's reconcile removes them otherwise). */
  stopPool(): Promise<void> {
    return this.pool.drain();
  }

  async open(sandboxId: string): Promise<SandboxEgressAttachment> {
    await this.closeEndpoint(sandboxId);
    this.pool.start();
    const endpoint = this.pool.take() ?? (await this.prepare());
    endpoint.serving.sandboxId = sandboxId;
    endpoint.proxy.assign(sandboxId);
    this.endpoints.set(sandboxId, endpoint);
    const { link, ca } = endpoint;
    return { netnsPath: link.netnsPath, proxyUrl: `http://${link.hostAddress}:${this.port}`, caCertificatePem: ca.certificatePem, nameserver: link.hostAddress };
  }

  async close(sandboxId: string): Promise<void> {
    await this.closeEndpoint(sandboxId);
    await this.o.audit.flush(sandboxId);
  }

  /**
   * Closes the endpoints of sandboxes not in `keep`, empties the pool (refilled by the next
   * `open` or `warm`), and removes every network of this instance this process did not make
   * (those of a process that died: its sandboxes' and its pool's).
   */
  async reconcile(keep: ReadonlySet<string>): Promise<void> {
    for (const id of [...this.endpoints.keys()]) if (!keep.has(id)) await this.closeEndpoint(id);
    await this.pool.drain();
    await this.network.reconcile();
  }

  /** A new endpoint serving nobody yet: its proxy and resolver refuse everything until the claim. */
  private async prepare(): Promise<Endpoint> {
    const link = await this.network.create();
    const serving: { sandboxId?: string } = {};
    let endpoint: Endpoint | undefined;
    try {
      const ca = await SandboxCa.create(link.netns);
      const proxy = new SandboxProxy({ ca, context: this.o.context, leases: this.o.leases, audit: this.o.audit, resolve: this.o.resolve, transparentPorts: this.o.transparentPorts });
      // the sandbox's resolver: allowed names answer the proxy's own address, nothing is forwarded
      const resolver = new SandboxResolver({
        address: link.hostAddress,
        rules: async () => (serving.sandboxId === undefined ? undefined : (await this.o.context(serving.sandboxId))?.rules),
        record: (decision) => {
          if (serving.sandboxId !== undefined) this.o.audit.record(serving.sandboxId, { at: new Date().toISOString(), ...decision });
        },
      });
      endpoint = { link, ca, proxy, resolver, serving };
      await proxy.listen(link.hostAddress, this.port);
      await resolver.listen(link.hostAddress);
      return endpoint;
    } catch (error) {
      await (endpoint ? this.destroy(endpoint) : this.network.remove(link.netns));
      throw error instanceof PalisadeError ? error : new PalisadeError('unavailable', `could not start the sandbox's egress proxy: ${(error as Error).message}`);
    }
  }

  private async destroy(endpoint: Endpoint): Promise<void> {
    await endpoint.proxy.close();
    await endpoint.resolver.close();
    await this.network.remove(endpoint.link.netns);
  }

  private async closeEndpoint(sandboxId: string): Promise<void> {
    const endpoint = this.endpoints.get(sandboxId);
    this.endpoints.delete(sandboxId);
    if (endpoint) await this.destroy(endpoint);
  }
}
