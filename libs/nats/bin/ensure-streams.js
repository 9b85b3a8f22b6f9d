#!/usr/bin/env node
// Creates (or updates) the JetStream streams PALISADE_EVENTS and PALISADE_DLQ as the
// admin identity spiffe://palisade.local/admin/platform, issued from the dev CA.
// Needs libs/nats built. Used by deploy/local/nats.sh.
//   ensure-streams.js --servers tls://127.0.0.1:4223 --pki-dir .palisade/pki [--replicas 1]
'use strict';
const { parseArgs } = require('node:util');
const { ServiceIdentity } = require('@palisade/pki');
const { connectNats, ensureStreams } = require('../dist');

async function main() {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string' },
      'pki-dir': { type: 'string' },
      replicas: { type: 'string', default: '1' },
    },
  });
  if (!values.servers || !values['pki-dir']) throw new Error('--servers and --pki-dir are required');
  const identity = await ServiceIdentity.fromDevCa({
    caDir: values['pki-dir'],
    kind: 'admin',
    name: 'platform',
    lifetimeMs: 3600_000,
  });
  const nc = await connectNats({ servers: values.servers, identity, name: 'ensure-streams' });
  try {
    for (const info of await ensureStreams(nc, { replicas: Number(values.replicas) })) {
      console.log(`stream ${info.config.name} ready: ${info.config.subjects.join(', ')} (${info.state.messages} messages)`);
    }
  } finally {
    await nc.drain();
    identity.stop();
  }
}

main().catch((error) => {
  console.error(`ensure-streams: ${error.message}`);
  process.exit(1);
});
