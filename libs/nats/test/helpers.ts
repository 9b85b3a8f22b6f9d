// Shared by the libs/nats integration tests: the TLS NATS of deploy/local/nats.sh
// (NATS_URL from .palisade/env) and identities issued from the dev CA.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { buildEvent, systemEventContext, type EventEnvelope, type ServiceName } from '@palisade/contracts';
import { ServiceIdentity } from '@palisade/pki';
import { connectNats } from '../src';
import { setTimeout as sleep } from 'node:timers/promises';

export const NATS_URL = process.env.NATS_URL ?? 'tls://127.0.0.1:4223';
export const PKI_DIR = process.env.PALISADE_PKI_DIR ?? join(__dirname, '..', '..', '..', '.palisade', 'pki');

/** A token unique to this test run, usable as an event aggregate. */
export const runToken = (prefix = 't') => `${prefix}${randomBytes(5).toString('hex')}`;

export const serviceIdentity = (name: ServiceName, lifetimeMs?: number) =>
  ServiceIdentity.fromDevCa({ caDir: PKI_DIR, name, ...(lifetimeMs ? { lifetimeMs } : {}) });

export const adminIdentity = () => ServiceIdentity.fromDevCa({ caDir: PKI_DIR, kind: 'admin', name: 'platform' });

export async function connectAs(identity: ServiceIdentity, name = 'int-test'): Promise<NatsConnection> {
  return connectNats({ servers: NATS_URL, identity, name });
}

/** A connection that gives up at once, for refusals. */
export function connectOnce(tls: Record<string, unknown> | null) {
  return connect({ servers: NATS_URL, tls: tls as never, reconnect: false, timeout: 3000 });
}

export function testEvent(source: ServiceName, type: string, data: Record<string, unknown> = {}): EventEnvelope {
  return buildEvent(systemEventContext(source), {
    type,
    tenantId: 'acme',
    actor: { type: 'service', id: source },
    data,
  });
}

export async function deleteDurable(admin: NatsConnection, stream: string, durable: string): Promise<void> {
  const jsm = await admin.jetstreamManager({ checkAPI: false });
  await jsm.consumers.delete(stream, durable).catch((error: Error) => {
    if (!/consumer not found/i.test(error.message)) throw error;
  });
}

export { sleep };

/** Resolve with the value `poll` returns once it is not undefined, or fail after `timeoutMs`. */
export async function eventually<T>(poll: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await poll();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}
