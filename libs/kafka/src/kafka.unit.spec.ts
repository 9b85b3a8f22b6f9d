import type * as tls from 'node:tls';
import { logLevel, type LogEntry } from 'kafkajs';
import { identitySocketFactory, kafkaClient, parseBrokers, type KafkaIdentity } from './client';
import { kafkaLogCreator, sanitizeLogEntry, type KafkaLogger } from './logger';

const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----';

function identityOf(name: string): KafkaIdentity & { rotate(next: string): void } {
  let current = name;
  const material = () => ({
    certPem: `cert of ${current}`,
    keyPem: `key of ${current}`,
    caPem: 'the CA',
    notBefore: new Date(0),
    notAfter: new Date(1),
    spiffeId: `spiffe://palisade.local/service/${current}`,
  });
  return { current: material, rotate: (next: string) => (current = next) };
}

describe('parseBrokers', () => {
  it('reads the comma-separated KAFKA_BROKERS value and lists', () => {
    expect(parseBrokers('127.0.0.1:9093, kafka-2.internal:9093')).toEqual(['127.0.0.1:9093', 'kafka-2.internal:9093']);
    expect(parseBrokers(['[::1]:9093'])).toEqual(['[::1]:9093']);
  });

  it('refuses an empty list and an address without a port', () => {
    expect(() => parseBrokers(' , ')).toThrow(/no Kafka broker/);
    expect(() => parseBrokers('127.0.0.1')).toThrow(/invalid Kafka broker address "127.0.0.1"/);
    expect(() => parseBrokers('kafka:port')).toThrow(/invalid Kafka broker address/);
  });

  it('is applied by kafkaClient, which also needs a client id', () => {
    const identity = identityOf('audit');
    expect(() => kafkaClient({ brokers: '', identity, clientId: 'audit' })).toThrow(/no Kafka broker/);
    expect(() => kafkaClient({ brokers: '127.0.0.1:9093', identity, clientId: '' })).toThrow(/clientId/);
  });
});

describe('identitySocketFactory', () => {
  function recordingConnect() {
    const calls: tls.ConnectionOptions[] = [];
    const connect = (options: tls.ConnectionOptions) => {
      calls.push(options);
      return { setKeepAlive: () => undefined } as unknown as tls.TLSSocket;
    };
    return { calls, connect };
  }

  it('opens each connection over TLS 1.3 with the certificate the identity holds at that moment', () => {
    const identity = identityOf('audit');
    const { calls, connect } = recordingConnect();
    const factory = identitySocketFactory(identity, connect);
    factory({ host: 'kafka.internal', port: 9093, ssl: {}, onConnect: () => undefined });
    identity.rotate('audit-renewed');
    factory({ host: '127.0.0.1', port: 9093, ssl: {}, onConnect: () => undefined });

    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({
      host: 'kafka.internal',
      port: 9093,
      servername: 'kafka.internal',
      cert: 'cert of audit',
      key: 'key of audit',
      ca: 'the CA',
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
    });
    expect(calls[1]).toMatchObject({ host: '127.0.0.1', cert: 'cert of audit-renewed', key: 'key of audit-renewed' });
    // SNI carries host names only, never an IP address.
    expect(calls[1]).not.toHaveProperty('servername');
  });
});

describe('kafkajs logs', () => {
  function recordingLogger() {
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
    const logger: Required<KafkaLogger> = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    return { lines, logger };
  }

  const entry = (level: logLevel, log: Record<string, unknown>): LogEntry => ({
    namespace: 'Connection',
    level,
    label: 'x',
    log: { timestamp: '2026-11-22T10:00:00.000Z', message: 'm', ...log },
  });

  it('reach the injected logger at the matching level, tagged with their namespace', () => {
    const { lines, logger } = recordingLogger();
    const write = kafkaLogCreator(logger)(logLevel.INFO);
    write(entry(logLevel.ERROR, { message: 'Connection error', broker: '127.0.0.1:9093', error: 'refused' }));
    write(entry(logLevel.WARN, { message: 'w' }));
    write(entry(logLevel.INFO, { message: 'i', groupId: 'palisade-audit' }));
    write(entry(logLevel.DEBUG, { message: 'd' }));
    expect(lines.map((l) => l.level)).toEqual(['error', 'warn', 'info', 'debug']);
    expect(lines[0]).toEqual({
      level: 'error',
      msg: 'Connection error',
      obj: { component: 'kafkajs', namespace: 'Connection', broker: '127.0.0.1:9093', error: 'refused' },
    });
    expect(lines[2].obj.groupId).toBe('palisade-audit');
  });

  it('never carry TLS or SASL material, payloads, or a PEM block', () => {
    const { msg, fields } = sanitizeLogEntry({
      timestamp: 't',
      message: `bad key ${KEY_PEM}`,
      broker: 'b:9093',
      ssl: { key: KEY_PEM, cert: 'c' },
      sasl: { mechanism: 'plain', username: 'u', password: 'hunter2' },
      password: 'hunter2',
      payload: Buffer.from('secret record'),
      error: `could not parse ${KEY_PEM}`,
      topics: ['palisade.audit.v1', { key: KEY_PEM }],
    });
    const text = JSON.stringify({ msg, fields });
    expect(text).not.toMatch(/BEGIN PRIVATE KEY|MIGHAgEA|hunter2|secret record/);
    expect(msg).toBe('bad key [redacted PEM]');
    expect(fields).toEqual({ broker: 'b:9093', error: 'could not parse [redacted PEM]', topics: ['palisade.audit.v1'] });
  });
});
