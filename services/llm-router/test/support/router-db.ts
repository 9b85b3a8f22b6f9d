import { Client } from 'pg';
import { infra } from '@palisade/testing';

/** Runs `work` on a connection to the router's database (its owner), closed after. */
export async function withRouterDb<T>(work: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_llm_router', user: 'palisade_llm_router_owner' });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}
