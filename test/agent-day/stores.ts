import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { DeliverPolicy } from 'nats';
import { EVENTS_STREAM } from '@palisade/contracts';
import { connectNats } from '@palisade/nats';
import type { ServiceIdentity } from '@palisade/pki';

/**
 * Where the day's data could have come to rest, as text a marker search reads (step 11):
 * each piece names its place (`log auth`, `postgres llm-router events llm-router.model-call.recorded`,
 * `jetstream palisade.events.…`, `kafka <topic>`).
 */
export interface Place {
  where: string;
  text: string;
}

/** Every file of a log directory (the services' stdout and stderr). */
export function logPlaces(dir: string): Place[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => ({ where: `log ${f.replace(/\.log$/, '')}`, text: readFileSync(join(dir, f), 'utf8') }));
}

/** Every row of every table of the given schemas, as JSON text; event store rows named by their event type. */
export async function postgresPlaces(connection: { host: string; port: number; database: string; user: string }, schemas: Array<{ service: string; schema: string }>): Promise<Place[]> {
  const client = new Client(connection);
  await client.connect();
  const places: Place[] = [];
  try {
    for (const { service, schema } of schemas) {
      const tables = await client.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, [schema]);
      for (const { table_name: table } of tables.rows) {
        const rows = await client.query<{ row: string; type: string | null }>(
          `SELECT to_jsonb(t)::text AS row, ${table === 'events' ? 'event_type' : 'NULL'} AS type FROM "${schema}"."${table}" t`,
        );
        for (const r of rows.rows) places.push({ where: `postgres ${service} ${table}${r.type ? ` ${r.type}` : ''}`, text: r.row });
      }
    }
  } finally {
    await client.end();
  }
  return places;
}

/** The messages of the events stream published since `since` (JetStream), named by subject. */
export async function jetStreamPlaces(options: { servers: string; identity: ServiceIdentity; since: string }): Promise<Place[]> {
  const nc = await connectNats({ servers: options.servers, identity: options.identity, name: 'agent-day-marker-search' });
  const places: Place[] = [];
  try {
    const js = nc.jetstream();
    const last = (await (await nc.jetstreamManager()).streams.info(EVENTS_STREAM)).state.last_seq;
    const consumer = await js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.since });
    let seq = 0;
    while (seq < last) {
      const batch = await consumer.fetch({ max_messages: 2000, expires: 3000 });
      let n = 0;
      for await (const m of batch) {
        n++;
        seq = m.seq;
        places.push({ where: `jetstream ${m.subject}`, text: m.string() });
      }
      if (n === 0) break; // nothing more since the start time
    }
  } finally {
    await nc.drain();
  }
  return places;
}

export interface Finding {
  where: string;
  marker: string;
  kind: 'secret' | 'personal';
}

/** Where each marker appears. */
export function search(places: Place[], markers: Array<{ name: string; value: string; kind: 'secret' | 'personal' }>): Finding[] {
  const found = new Map<string, Finding>();
  for (const place of places) {
    for (const m of markers) {
      if (place.text.includes(m.value)) found.set(`${place.where}|${m.name}`, { where: place.where, marker: m.name, kind: m.kind });
    }
  }
  return [...found.values()].sort((a, b) => a.where.localeCompare(b.where) || a.marker.localeCompare(b.marker));
}
