import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { loadCa } from './ca';
import { DEFAULT_LEAF_LIFETIME_MS, issueCertificate } from './issue';
import { spiffeIdOf } from './spiffe';

/** The certificate a process presents, with its key and the CA bundle it trusts. */
export interface IdentityMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
  notBefore: Date;
  notAfter: Date;
  /** URI SAN of the certificate (`spiffe://palisade.local/...`), if it has one. */
  spiffeId: string | undefined;
}

export type RenewListener = (material: IdentityMaterial) => void;

/** Minimal, pino-compatible logger. */
export interface IdentityLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Development: the process issues its own certificate from the dev CA, and renews it. */
export interface DevCaIdentityOptions {
  mode: 'dev-ca';
  /** Directory holding ca.crt and ca.key (PALISADE_PKI_DIR). */
  caDir: string;
  kind?: 'service' | 'admin';
  name: string;
  dns?: readonly string[];
  ips?: readonly string[];
  /** Certificate lifetime; renewed at two thirds of it. Default 24 h. */
  lifetimeMs?: number;
  logger?: IdentityLogger;
}

/**
 * Production: certificate, key and CA bundle are files that an agent (SPIRE,
 * cert-manager) rewrites; they are reloaded when they change.
 */
export interface FilesIdentityOptions {
  mode: 'files';
  certFile: string;
  keyFile: string;
  caFile: string;
  /** How often the files are checked. Default 5 s. */
  pollIntervalMs?: number;
  logger?: IdentityLogger;
}

export type ServiceIdentityOptions = DevCaIdentityOptions | FilesIdentityOptions;

const silent: IdentityLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function materialOf(certPem: string, keyPem: string, caPem: string): IdentityMaterial {
  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('the private key does not match the certificate');
  return { certPem, keyPem, caPem, notBefore: cert.validFromDate, notAfter: cert.validToDate, spiffeId: spiffeIdOf(cert) };
}

/**
 * The TLS identity of a running process. Its certificate changes under it (renewal,
 * rotation) without a restart: read `current()` or `tlsOptions()` whenever a new
 * connection is made, and subscribe with `onRenew` to update long-lived servers
 * (`attachTo(server)` does that for a node tls/https server).
 */
export class ServiceIdentity {
  private material: IdentityMaterial;
  private readonly listeners = new Set<RenewListener>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly logger: IdentityLogger;

  private constructor(
    private readonly options: ServiceIdentityOptions,
    initial: IdentityMaterial,
  ) {
    this.material = initial;
    this.logger = options.logger ?? silent;
  }

  static async start(options: ServiceIdentityOptions): Promise<ServiceIdentity> {
    const initial = options.mode === 'dev-ca' ? await issueFromDevCa(options) : readFiles(options);
    const identity = new ServiceIdentity(options, initial);
    identity.logger.info(
      { spiffeId: initial.spiffeId, notAfter: initial.notAfter.toISOString(), mode: options.mode },
      'TLS identity loaded',
    );
    identity.schedule();
    return identity;
  }

  /** Shorthand for `start({ mode: 'dev-ca', ... })`. */
  static fromDevCa(options: Omit<DevCaIdentityOptions, 'mode'>): Promise<ServiceIdentity> {
    return ServiceIdentity.start({ ...options, mode: 'dev-ca' });
  }

  /** Shorthand for `start({ mode: 'files', ... })`. */
  static fromFiles(options: Omit<FilesIdentityOptions, 'mode'>): Promise<ServiceIdentity> {
    return ServiceIdentity.start({ ...options, mode: 'files' });
  }

  current(): IdentityMaterial {
    return this.material;
  }

  /** Called with the new material after every renewal or reload; returns an unsubscribe. */
  onRenew(listener: RenewListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Options for node `tls.connect`, `tls.createServer`, `https.createServer` (TLS 1.3 only). */
  tlsOptions(): SecureContextOptions & { cert: string; key: string; ca: string; minVersion: 'TLSv1.3' } {
    const { certPem, keyPem, caPem } = this.material;
    return { cert: certPem, key: keyPem, ca: caPem, minVersion: 'TLSv1.3' };
  }

  /** Keep a running tls/https server on the current certificate; returns a detach. */
  attachTo(server: Pick<TlsServer, 'setSecureContext'>): () => void {
    return this.onRenew(() => server.setSecureContext(this.tlsOptions()));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    const delay = delayMs ?? this.nextCheckDelay();
    this.timer = setTimeout(() => void this.refresh(), Math.max(0, delay));
    this.timer.unref();
  }

  private nextCheckDelay(): number {
    if (this.options.mode === 'files') return this.options.pollIntervalMs ?? 5000;
    // Renew when two thirds of the requested lifetime have passed.
    const lifetime = this.options.lifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS;
    return this.material.notAfter.getTime() - lifetime / 3 - Date.now();
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    let next: IdentityMaterial | undefined;
    try {
      if (this.options.mode === 'dev-ca') {
        next = await issueFromDevCa(this.options);
      } else {
        const read = readFiles(this.options);
        const changed = ['certPem', 'keyPem', 'caPem'].some(
          (k) => read[k as keyof IdentityMaterial] !== this.material[k as keyof IdentityMaterial],
        );
        if (changed) next = read;
      }
    } catch (error) {
      // Keep the current certificate and try again soon; a file pair caught mid-rewrite lands here too.
      const remaining = this.material.notAfter.getTime() - Date.now();
      this.logger.warn({ err: error, remainingMs: remaining }, 'TLS identity renewal failed, retrying');
      const retry = this.options.mode === 'files' ? this.nextCheckDelay() : Math.min(10_000, Math.max(100, remaining / 4));
      this.schedule(retry);
      return;
    }
    if (this.stopped) return;
    if (next) {
      this.material = next;
      this.logger.info({ spiffeId: next.spiffeId, notAfter: next.notAfter.toISOString() }, 'TLS identity renewed');
      for (const listener of [...this.listeners]) {
        try {
          listener(next);
        } catch (error) {
          this.logger.error({ err: error }, 'TLS identity renewal listener failed');
        }
      }
    }
    this.schedule();
  }
}

async function issueFromDevCa(options: DevCaIdentityOptions): Promise<IdentityMaterial> {
  const ca = await loadCa(options.caDir);
  const issued = await issueCertificate(ca, {
    kind: options.kind ?? 'service',
    name: options.name,
    dns: options.dns,
    ips: options.ips,
    lifetimeMs: options.lifetimeMs,
  });
  return materialOf(issued.certPem, issued.keyPem, issued.caPem);
}

function readFiles(options: FilesIdentityOptions): IdentityMaterial {
  return materialOf(
    readFileSync(options.certFile, 'utf8'),
    readFileSync(options.keyFile, 'utf8'),
    readFileSync(options.caFile, 'utf8'),
  );
}
