#!/usr/bin/env node
// Readiness probe of the local Kafka broker, without dependencies: over mutual TLS with
// the given client certificate, sends a Kafka Metadata (v1) request and succeeds only
// when the broker answers with at least one live broker and an active controller.
// (In KRaft a broker lists itself only once it is registered and unfenced.)
//
//   node probe.js HOST:PORT CERT KEY CA [TIMEOUT_MS]
//
// Exit 0: ready; 1: not ready (reason on stderr).
'use strict';
const fs = require('node:fs');
const tls = require('node:tls');

const [address, certFile, keyFile, caFile, timeoutArg] = process.argv.slice(2);
if (!address || !certFile || !keyFile || !caFile) {
  console.error('usage: probe.js HOST:PORT CERT KEY CA [TIMEOUT_MS]');
  process.exit(2);
}
const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
const timeoutMs = Number(timeoutArg ?? 5000);
const correlationId = 0x5a5a;

function metadataRequest() {
  const clientId = Buffer.from('palisade-probe');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4);
  let o = 0;
  o = body.writeInt16BE(3, o); // api key: Metadata
  o = body.writeInt16BE(1, o); // api version 1
  o = body.writeInt32BE(correlationId, o);
  o = body.writeInt16BE(clientId.length, o);
  o += clientId.copy(body, o);
  body.writeInt32BE(0, o); // no topics: brokers and controller only
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
}

function parse(response) {
  let o = 0;
  const id = response.readInt32BE(o);
  o += 4;
  if (id !== correlationId) throw new Error(`unexpected correlation id ${id}`);
  const brokers = response.readInt32BE(o);
  o += 4;
  for (let i = 0; i < brokers; i++) {
    o += 4; // node id
    o += 2 + response.readInt16BE(o); // host
    o += 4; // port
    const rack = response.readInt16BE(o);
    o += 2 + Math.max(rack, 0);
  }
  const controllerId = response.readInt32BE(o);
  return { brokers, controllerId };
}

function fail(reason) {
  console.error(`kafka probe: not ready: ${reason}`);
  process.exit(1);
}

const socket = tls.connect({
  host,
  port,
  cert: fs.readFileSync(certFile),
  key: fs.readFileSync(keyFile),
  ca: fs.readFileSync(caFile),
  minVersion: 'TLSv1.3',
});
socket.setTimeout(timeoutMs, () => {
  socket.destroy();
  fail(`no answer within ${timeoutMs} ms`);
});
let received = Buffer.alloc(0);
socket.on('secureConnect', () => socket.write(metadataRequest()));
socket.on('data', (chunk) => {
  received = Buffer.concat([received, chunk]);
  if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
  socket.destroy();
  try {
    const { brokers, controllerId } = parse(received.subarray(4, 4 + received.readInt32BE(0)));
    if (brokers < 1) fail('no live broker in the metadata');
    if (controllerId < 0) fail('no active controller');
    process.exit(0);
  } catch (error) {
    fail(`bad metadata response (${error.message})`);
  }
});
socket.on('error', (error) => fail(error.message));
socket.on('close', () => fail('connection closed'));
