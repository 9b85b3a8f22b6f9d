#!/usr/bin/env node
// Development PKI command line (needs libs/pki built: npx tsc -b libs/pki).
//   pki.js ensure-ca --dir D
//   pki.js issue --dir D --kind service|server|admin --name N [--dns a,b] [--ip 127.0.0.1] [--hours H] --out OUTDIR
'use strict';
const { parseArgs } = require('node:util');
const pki = require('../dist');

const usage = `usage:
  pki.js ensure-ca --dir DIR
  pki.js issue --dir DIR --kind service|server|admin --name NAME [--dns a,b] [--ip 127.0.0.1,::1] [--hours H] --out OUTDIR`;

const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

async function main(argv) {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string' },
      kind: { type: 'string' },
      name: { type: 'string' },
      dns: { type: 'string' },
      ip: { type: 'string' },
      hours: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (!values.dir) throw new Error('--dir is required');
  if (command === 'ensure-ca') {
    const { ca, created } = await pki.ensureCa(values.dir);
    console.log(`${created ? 'created' : 'kept'} ${pki.caFiles(values.dir).cert} (valid until ${ca.cert.notAfter.toISOString()})`);
    return;
  }
  if (command === 'issue') {
    for (const required of ['kind', 'name', 'out']) if (!values[required]) throw new Error(`--${required} is required`);
    let lifetimeMs;
    if (values.hours !== undefined) {
      const hours = Number(values.hours);
      if (!(hours > 0)) throw new Error(`--hours must be a positive number, got "${values.hours}"`);
      lifetimeMs = Math.round(hours * 3600 * 1000);
    }
    const result = await pki.issueToDirectory(
      values.dir,
      { kind: values.kind, name: values.name, dns: list(values.dns), ips: list(values.ip), lifetimeMs },
      values.out,
    );
    console.log(
      `${result.issued ? `issued (${result.reason})` : 'kept'} ${result.files.cert} (valid until ${result.notAfter.toISOString()})`,
    );
    return;
  }
  throw new Error(command ? `unknown command "${command}"` : 'no command');
}

main(process.argv.slice(2)).catch((error) => {
  console.error(`pki: ${error.message}\n${usage}`);
  process.exit(1);
});
