// A ledger client for the kill -9 test: reserves and settles in a loop on the test schema
// (the built ledger, as the service runs it) and prints a line per 50 answers, until killed.
const { systemEventContext } = require('@palisade/contracts');
const { createDataSource } = require('@palisade/postgres');
const { LedgerRepository } = require('../../dist/ledger/ledger.repository');
const { LedgerService } = require('../../dist/ledger/ledger.service');

async function main() {
  const { connection, schema, tenant, agents, teams } = JSON.parse(process.env.RESERVER);
  const ds = createDataSource(connection);
  await ds.initialize();
  const ledger = new LedgerService({ repo: new LedgerRepository(ds, schema), eventContext: systemEventContext('billing') });
  let n = 0;
  const worker = async (w) => {
    for (;;) {
      const i = n++;
      const agent = i % agents;
      const requestId = `k${process.pid}-${w}-${i}`;
      const r = await ledger.reserve('llm-router', { tenantId: tenant, requestId, agentId: `agent-${agent}`, teamId: `team-${agent % teams}`, amountMicros: String(1 + (i % 90)), ttlMs: 1000 });
      if (r.status === 'reserved' && i % 2 === 0) await ledger.settle('llm-router', { tenantId: tenant, requestId, actualMicros: String(i % 120) });
      if (i % 50 === 0) process.stdout.write(`${i}\n`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
}
main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
