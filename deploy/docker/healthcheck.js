#!/usr/bin/env node
// Container health check: GET https://localhost:$HTTP_PORT/health/ready, verifying the
// service's certificate against the CA it trusts (TLS_CA_FILE, or ca.crt of
// PALISADE_PKI_DIR). Healthy only on 200. No dependencies.
'use strict';
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');

const port = Number(process.env.HTTP_PORT);
const caFile = process.env.TLS_CA_FILE || (process.env.PALISADE_PKI_DIR && path.join(process.env.PALISADE_PKI_DIR, 'ca.crt'));
if (!port || !caFile) {
  console.error('healthcheck: HTTP_PORT and TLS_CA_FILE (or PALISADE_PKI_DIR) are required');
  process.exit(1);
}
const req = https.get(
  { host: 'localhost', port, path: '/health/ready', ca: fs.readFileSync(caFile), minVersion: 'TLSv1.3', timeout: 4000 },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (error) => {
  console.error(`healthcheck: ${error.message}`);
  process.exit(1);
});
