// Before kafkajs: it takes the linear grouping and the CRC-32C from the module cache.
import './linear-grouping';
import './encoder-growth';
import './crc32c';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { Kafka, type ISocketFactory, type RetryOptions } from 'kafkajs';
import type { ServiceIdentity } from '@palisade/pki';
import { KAFKAJS_LOG_LEVELS, kafkaLogCreator, silentLogger, type KafkaLogger, type KafkaLogLevel } from './logger';

/** What the client needs of a service identity: its current certificate, key and CA. */
export type KafkaIdentity = Pick<ServiceIdentity, 'current'>;

export interface KafkaClientOptions {
  /** `host:port` list, or the comma-separated KAFKA_BROKERS value. */
  brokers: string | readonly string[];
  /** The certificate presented to Kafka (it names the principal) and the CA Kafka's must chain to. */
  identity: KafkaIdentity;
  /** Shown in the broker's logs and quotas, e.g. the service name. */
  clientId: string;
  logger?: KafkaLogger;
  /** kafkajs' own verbosity. Default `info`. */
  logLevel?: KafkaLogLevel;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  retry?: RetryOptions;
}

export function parseBrokers(brokers: string | readonly string[]): string[] {
  const list = (typeof brokers === 'string' ? brokers.split(',') : [...brokers]).map((b) => b.trim()).filter(Boolean);
  if (list.length === 0) throw new Error('no Kafka broker given (KAFKA_BROKERS: host:port[,host:port...])');
  for (const broker of list) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(broker)) {
      throw new Error(`invalid Kafka broker address "${broker}" (host:port)`);
    }
  }
  return list;
}

type Connect = (options: tls.ConnectionOptions, onConnect: () => void) => tls.TLSSocket;

/**
 * A kafkajs socket factory that opens every broker connection over TLS 1.3 with the
 * identity's certificate *as it is at that moment*: a renewed certificate is used from
 * the next connection on, while established connections keep running. The server
 * certificate must chain to the identity's CA and name the broker host.
 */
export function identitySocketFactory(identity: KafkaIdentity, connect: Connect = tls.connect): ISocketFactory {
  return ({ host, port, onConnect }) => {
    const { certPem, keyPem, caPem } = identity.current();
    const socket = connect(
      {
        host,
        port,
        ...(isIP(host) ? {} : { servername: host }),
        cert: certPem,
        key: keyPem,
        ca: caPem,
        minVersion: 'TLSv1.3',
        rejectUnauthorized: true,
      },
      onConnect,
    );
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}

/**
 * A kafkajs client for a Palisade service: mutual TLS with its identity, kafkajs logs
 * in the service log (sanitized). Producers, consumers and admins come from it.
 */
export function kafkaClient(options: KafkaClientOptions): Kafka {
  if (!options.clientId) throw new Error('clientId is required');
  return new Kafka({
    brokers: parseBrokers(options.brokers),
    clientId: options.clientId,
    // `ssl: true` makes kafkajs hand every connection to the socket factory as TLS;
    // the factory supplies the certificate.
    ssl: true,
    socketFactory: identitySocketFactory(options.identity),
    logLevel: KAFKAJS_LOG_LEVELS[options.logLevel ?? 'info'],
    logCreator: kafkaLogCreator(options.logger ?? silentLogger),
    connectionTimeout: options.connectionTimeoutMs ?? 5000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    ...(options.retry ? { retry: options.retry } : {}),
  });
}
