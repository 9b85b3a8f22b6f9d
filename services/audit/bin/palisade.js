#!/usr/bin/env node
// `palisade audit verify …`: see services/audit/README.md. Needs `npx tsc -b services/audit`.
'use strict';
const { run } = require('../dist/cli/palisade.js');
run(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
}).then((code) => process.exit(code));
