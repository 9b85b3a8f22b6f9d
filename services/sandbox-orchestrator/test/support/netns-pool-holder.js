// For the kill -9 test of the sandbox network pool: the built EgressService of instance
// argv[2] fills its pool, gives one network to a sandbox, prints `ready` once the pool is
// full again, then waits to be killed.
const { EgressAuditBatcher } = require('../../dist/egress/egress.audit');
const { EgressService } = require('../../dist/egress/egress.service');

async function main() {
  const [instance, poolSize, sandboxId] = process.argv.slice(2);
  const audit = new EgressAuditBatcher(async () => undefined);
  const egress = new EgressService({ instance, poolSize: Number(poolSize), context: async () => undefined, leases: { value: async () => Promise.reject(new Error('none')) }, audit });
  await egress.check();
  await egress.warm();
  await egress.open(sandboxId);
  while (egress.pooled < Number(poolSize)) await egress.warm();
  process.stdout.write('ready\n');
  setInterval(() => undefined, 60_000);
}
main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
