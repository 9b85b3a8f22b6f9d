import { PalisadeError } from '@palisade/contracts';
import type { SandboxEgress, SandboxEgressAttachment } from '../runtime/runtime.port';
import type { EgressAuditBatcher } from './egress.audit';
import { SandboxCa } from './egress.ca';
import type { CredentialLeases } from './egress.credentials';
import { SandboxResolver } from './egress.dns';
import { SandboxProxy, type EgressContextSource } from './egress.proxy';
import { SandboxNetwork } from './sandbox-network';

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
}

export const DEFAULT_PROXY_PORT = 3128;

/**
 * The egress side of the runtime: per sandbox a network namespace whose only way out is
 * its proxy endpoint, a CA of its own (memory only), the proxy listening there and a
 * resolver answering only the names its rules allow (with the proxy's address).
 */
export class EgressService implements SandboxEgress {
  private readonly network: SandboxNetwork;
  private readonly proxies = new Map<string, { proxy: SandboxProxy; resolver: SandboxResolver }>();
  private readonly port: number;

  constructor(private readonly o: EgressServiceOptions) {
    this.port = o.proxyPort ?? DEFAULT_PROXY_PORT;
    const transparent = o.transparentPorts ?? { http: 80, https: 443 };
    this.network = new SandboxNetwork(o.instance, { proxy: this.port, transparent: [transparent.http, transparent.https] });
  }

  check(): Promise<void> {
    return this.network.check();
  }

  async open(sandboxId: string): Promise<SandboxEgressAttachment> {
    await this.closeProxy(sandboxId);
    const link = await this.network.attach(sandboxId);
    try {
      const ca = await SandboxCa.create(sandboxId);
      const proxy = new SandboxProxy({ sandboxId, ca, context: this.o.context, leases: this.o.leases, audit: this.o.audit, resolve: this.o.resolve, transparentPorts: this.o.transparentPorts });
      // the sandbox's resolver: allowed names answer the proxy's own address, nothing is forwarded
      const resolver = new SandboxResolver({
        address: link.hostAddress,
        rules: async () => (await this.o.context(sandboxId))?.rules,
        record: (decision) => this.o.audit.record(sandboxId, { at: new Date().toISOString(), ...decision }),
      });
      this.proxies.set(sandboxId, { proxy, resolver });
      await proxy.listen(link.hostAddress, this.port);
      await resolver.listen(link.hostAddress);
      return { netnsPath: link.netnsPath, proxyUrl: `http://${link.hostAddress}:${this.port}`, caCertificatePem: ca.certificatePem, nameserver: link.hostAddress };
    } catch (error) {
      await this.closeProxy(sandboxId);
      await this.network.detach(sandboxId);
      throw error instanceof PalisadeError ? error : new PalisadeError('unavailable', `could not start the sandbox's egress proxy: ${(error as Error).message}`);
    }
  }

  async close(sandboxId: string): Promise<void> {
    await this.closeProxy(sandboxId);
    await this.network.detach(sandboxId);
    await this.o.audit.flush(sandboxId);
  }

  async reconcile(keep: ReadonlySet<string>): Promise<void> {
    for (const id of [...this.proxies.keys()]) if (!keep.has(id)) await this.closeProxy(id);
    await this.network.reconcile(keep);
  }

  private async closeProxy(sandboxId: string): Promise<void> {
    const endpoint = this.proxies.get(sandboxId);
    this.proxies.delete(sandboxId);
    await endpoint?.proxy.close();
    await endpoint?.resolver.close();
  }
}
