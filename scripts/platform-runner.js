// Starts built Palisade services as child processes and waits until they are ready.
// Shared by `npm start` (scripts/start.js), the end-to-end tests and the benchmarks.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const SERVICES = {
  auth: 7101,
  policy: 7102,
  credential: 7103,
  'sandbox-orchestrator': 7104,
  audit: 7105,
  'llm-router': 7106,
  billing: 7107,
};

/**
 * Node flags of a service, each with its measured reason in the service's README (its
 * Dockerfile's CMD carries the same): the router's young generation is 64 MB a semi-space
 * (V8's default 16), so that a call's garbage dies before a scavenge copies it.
 */
const NODE_FLAGS = {
  'llm-router': ['--max-semi-space-size=64'],
};

/** KEY=VALUE lines that deploy/local/up.sh wrote. */
function infraEnv() {
  const file = path.join(REPO, '.palisade', 'env');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run deploy/local/up.sh first`);
  const env = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

function get(url, ca, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Spawn each service (node services/<name>/dist/main.js), logs to <logDir>/<name>.log;
 * `env` applies to all of them, `envFor(name)` to one.
 * Returns handles with stop(); `waitReady` polls GET /health/ready.
 */
function startServices({ services = Object.keys(SERVICES), env = {}, envFor = () => ({}), portOffset = 0, logDir = path.join(REPO, '.palisade', 'logs') } = {}) {
  fs.mkdirSync(logDir, { recursive: true });
  // Every service verifies tokens with the keys of the auth service started beside it (on
  // its offset port), unless told otherwise.
  const authJwks = { AUTH_JWKS_URL: `https://127.0.0.1:${SERVICES.auth + portOffset}/.well-known/jwks.json` };
  // the sandbox orchestrator's egress proxy leases secrets from the credential service beside it
  const peers = { SANDBOX_CREDENTIAL_URL: `https://127.0.0.1:${SERVICES.credential + portOffset}` };
  const base = { ...authJwks, ...peers, ...process.env, ...infraEnv(), ...env };
  return services.map((name) => {
    const main = path.join(REPO, 'services', name, 'dist', 'main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
    const log = fs.openSync(path.join(logDir, `${name}.log`), 'a');
    const port = Number(env.HTTP_PORT ?? SERVICES[name] + portOffset);
    const child = spawn(process.execPath, [...(NODE_FLAGS[name] ?? []), main], { env: { ...base, ...envFor(name), HTTP_PORT: String(port) }, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const handle = {
      name,
      port,
      child,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
      stop(signal = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return handle.exited;
      },
    };
    return handle;
  });
}

async function waitReady(handles, { timeoutMs = 120000, ca = fs.readFileSync(path.join(infraEnv().PALISADE_PKI_DIR, 'ca.crt')) } = {}) {
  const started = Date.now();
  const readyAt = {};
  while (Object.keys(readyAt).length < handles.length) {
    for (const h of handles) {
      if (readyAt[h.name]) continue;
      if (h.child.exitCode !== null) throw new Error(`${h.name} exited with code ${h.child.exitCode}; see its log`);
      try {
        const res = await get(`https://127.0.0.1:${h.port}/health/ready`, ca, 1000);
        if (res.status === 200) readyAt[h.name] = Date.now() - started;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() - started > timeoutMs) {
      const missing = handles.filter((h) => !readyAt[h.name]).map((h) => h.name);
      throw new Error(`not ready within ${timeoutMs} ms: ${missing.join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return readyAt;
}

module.exports = { REPO, SERVICES, NODE_FLAGS, infraEnv, get, startServices, waitReady };
