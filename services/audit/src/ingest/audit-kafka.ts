import { PalisadeError } from '@palisade/contracts';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import type { Logger } from '@palisade/observability';
import type { ServiceIdentity } from '@palisade/pki';
import { withTimeout, type CheckResult } from '@palisade/service-kit';
import type { AuditConfig } from '../audit.config';

const KAFKA_PROBE_MS = 2000;

export interface AuditKafkaOptions {
  brokers: AuditConfig['KAFKA_BROKERS'];
  identity: ServiceIdentity;
  clientId: string;
  logger: Logger;
}

/**
 * The service's Kafka client and admin, connected once PostgreSQL and NATS are (the
 * writer, verification and the SIEM feeds share them), and a probe of the cluster every
 * 2 s for readiness. Before `connect()`, asking for either is `unavailable`.
 */
export class AuditKafka {
  private kafka: Kafka | undefined;
  private adminClient: Admin | undefined;
  private state: CheckResult = { ok: false, reason: 'not probed yet' };
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AuditKafkaOptions) {}

  get client(): Kafka {
    if (!this.kafka) throw new PalisadeError('unavailable', 'Kafka is not connected yet');
    return this.kafka;
  }

  get admin(): Admin {
    if (!this.adminClient) throw new PalisadeError('unavailable', 'Kafka is not connected yet');
    return this.adminClient;
  }

  /** Create the client (once) and connect the admin; start probing. */
  async connect(): Promise<void> {
    if (!this.kafka) {
      this.kafka = kafkaClient({
        brokers: this.options.brokers,
        identity: this.options.identity,
        clientId: this.options.clientId,
        logger: this.options.logger,
        logLevel: 'warn',
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
      });
      this.adminClient = this.kafka.admin();
    }
    await this.adminClient!.connect();
    this.probe();
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => this.probe(), KAFKA_PROBE_MS);
    this.probeTimer.unref();
  }

  /** Readiness: whether the cluster answered the last probe. */
  check(): CheckResult {
    return this.state;
  }

  async close(): Promise<void> {
    clearInterval(this.probeTimer);
    await this.adminClient?.disconnect().catch(() => undefined);
  }

  private probe(): void {
    if (this.probing || !this.adminClient) return;
    this.probing = true;
    withTimeout(this.adminClient.describeCluster(), 1500, 'Kafka')
      .then(
        () => (this.state = { ok: true }),
        (error: Error) => (this.state = { ok: false, reason: `Kafka unreachable (${error.message}); events wait in JetStream` }),
      )
      .finally(() => (this.probing = false));
  }
}
