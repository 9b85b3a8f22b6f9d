// The demo tenant of `npm start`: once every service is ready, creates tenant "demo" and
// its administrator through the auth service's real bootstrap API (the one-time token
// file the auth service reads), prints the random password once on the terminal (never
// to a file) and how to sign in. Idempotent: a second start finds the tenant and says so.
'use strict';
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');

const DEMO_TENANT = 'demo';
const DEMO_ADMIN = 'admin@demo.example';

function post(url, body, headers, ca) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(url, { method: 'POST', ca, timeout: 10000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A password that meets the default policy (≥ 12 characters, 3 classes): 144 random bits. */
function demoPassword() {
  return `Demo-${randomBytes(18).toString('base64url')}-7x`;
}

function ensureTokenFile(file) {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  fs.writeFileSync(file, token, { mode: 0o600, flag: 'wx' });
  return token;
}

/**
 * Options: authUrl (https://127.0.0.1:7101), ca (PEM), tokenFile (the AUTH_BOOTSTRAP_TOKEN_FILE
 * of that auth service), markerFile (remembers which tenant was seeded: never the password),
 * print (defaults to console.log; the only place the password goes).
 * Resolves { created: true, tenantId, username, password } or { created: false, tenantId? }.
 */
async function seedDemo({ authUrl, ca, tokenFile, markerFile, tenantId = DEMO_TENANT, username = DEMO_ADMIN, print = console.log }) {
  const token = ensureTokenFile(tokenFile);
  const password = demoPassword();
  const res = await post(
    `${authUrl}/v1/bootstrap`,
    { tenantId, tenantName: 'Demo', admin: { username, email: username, password } },
    { authorization: `Bootstrap ${token}` },
    ca,
  );
  if (res.status === 201) {
    fs.mkdirSync(path.dirname(markerFile), { recursive: true, mode: 0o700 });
    fs.writeFileSync(markerFile, JSON.stringify({ tenantId, username, createdAt: new Date().toISOString() }), { mode: 0o600 });
    fs.rmSync(tokenFile, { force: true }); // one-time: no longer needed
    print(`demo tenant "${tenantId}" created; administrator ${username}, password (shown only now): ${password}`);
    print(
      `sign in: curl --cacert .palisade/pki/ca.crt -H 'content-type: application/json' ` +
        `-d '{"username":"${username}","password":"${password}"}' ${authUrl}/v1/tenants/${tenantId}/sign-in`,
    );
    return { created: true, tenantId, username, password };
  }
  if (res.status === 409) {
    const marker = fs.existsSync(markerFile) ? JSON.parse(fs.readFileSync(markerFile, 'utf8')) : undefined;
    if (marker) {
      print(`demo tenant "${marker.tenantId}" exists already (administrator ${marker.username}; its password was shown when it was created on ${marker.createdAt})`);
      print(`sign in: curl --cacert .palisade/pki/ca.crt -H 'content-type: application/json' -d '{"username":"${marker.username}","password":"…"}' ${authUrl}/v1/tenants/${marker.tenantId}/sign-in`);
      return { created: false, tenantId: marker.tenantId };
    }
    print('a tenant exists already (not one this script seeded): no demo tenant created');
    return { created: false };
  }
  const error = res.json && res.json.error ? `${res.json.error.code}: ${res.json.error.message}` : `HTTP ${res.status}`;
  throw new Error(`demo tenant: bootstrap refused (${error})`);
}

module.exports = { seedDemo, DEMO_TENANT, DEMO_ADMIN };
