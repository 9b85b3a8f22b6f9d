import { PalisadeError } from '@palisade/contracts';
import type { SandboxEgress, SandboxEgressAttachment } from '../runtime/runtime.port';
import type { EgressAuditBatcher } from './egress.audit';
import { SandboxCa } from './egress.ca';
import type { CredentialLeases } from './egress.credentials';
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
}

export const DEFAULT_PROXY_PORT = 3128;

/**
 * The egress side of the runtime: per sandbox a network namespace whose only way out is
 * its proxy endpoint, a CA of its own (memory only) and the proxy listening there.
 */
export class EgressService implements SandboxEgress {
  private readonly network: SandboxNetwork;
  private readonly proxies = new Map<string, SandboxProxy>();
  private readonly port: number;

  constructor(private readonly o: EgressServiceOptions) {
    this.port = o.proxyPort ?? DEFAULT_PROXY_PORT;
    this.network = new SandboxNetwork(o.instance, this.port);
  }

  check(): Promise<void> {
    return this.network.check();
  }

  async open(sandboxId: string): Promise<SandboxEgressAttachment> {
    await this.closeProxy(sandboxId);
    const link = await this.network.attach(sandboxId);
    try {
      const ca = await SandboxCa.create(sandboxId);
      const proxy = new SandboxProxy({ sandboxId, ca, context: this.o.context, leases: this.o.leases, audit: this.o.audit, resolve: this.o.resolve });
      await proxy.listen(link.hostAddress, this.port);
      this.proxies.set(sandboxId, proxy);
      return { netnsPath: link.netnsPath, proxyUrl: `http://${link.hostAddress}:${this.port}`, caCertificatePem: ca.certificatePem };
    } catch (error) {
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
    const proxy = this.proxies.get(sandboxId);
    this.proxies.delete(sandboxId);
    await proxy?.close();
  }
}
