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

function post(url, body, headers, ca, method = 'POST') {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(url, { method, ca, timeout: 10000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
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

/** What the demo administrator may do with credentials (the credential service asks the policy service). */
const CREDENTIAL_ACTIONS = ['create', 'read', 'rotate', 'revoke', 'delete', 'manage_keys'];

/**
 * The demo tenant's first policy, through the policy service's admin API with the
 * administrator's own token (its `admin` role carries `policy:admin`): role
 * `secrets-admin` for the administrator, allowed every credential action but `use`
 * (leases are for agents and tool runners, which the administrator adds).
 */
async function seedDemoPolicy({ authUrl, policyUrl, ca, tenantId, username, password, adminUserId }) {
  const signIn = await post(`${authUrl}/v1/tenants/${tenantId}/sign-in`, { username, password }, {}, ca);
  if (signIn.status !== 200 || !signIn.json?.accessToken) throw new Error(`demo policy: sign-in answered ${signIn.status}`);
  const auth = { authorization: `Bearer ${signIn.json.accessToken}` };
  const steps = [
    ['PUT', '/v1/roles/secrets-admin', { inherits: [] }],
    ['POST', '/v1/assignments', { assignments: [{ subject: `user:${adminUserId}`, role: 'secrets-admin' }] }],
    ['PUT', '/v1/policies/demo-credentials', { rules: CREDENTIAL_ACTIONS.map((a) => ({ id: `secrets-admin-${a.replace('_', '-')}`, effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: `credential.${a}` })) }],
  ];
  for (const [method, route, body] of steps) {
    const res = await post(`${policyUrl}${route}`, body, auth, ca, method);
    if (res.status >= 300) throw new Error(`demo policy: ${method} ${route} answered ${res.status}${res.json?.error ? ` (${res.json.error.message})` : ''}`);
  }
}

/**
 * The demo tenant's billing, with the administrator's own token (its `admin` role carries
 * `auth:admin`, which billing accepts for tenant administration): a price table (two
 * models, per million tokens) and a hard tenant budget of $100 a month. Money is µ-units.
 */
async function seedDemoBilling({ authUrl, billingUrl, ca, tenantId, username, password }) {
  const signIn = await post(`${authUrl}/v1/tenants/${tenantId}/sign-in`, { username, password }, {}, ca);
  if (signIn.status !== 200 || !signIn.json?.accessToken) throw new Error(`demo billing: sign-in answered ${signIn.status}`);
  const auth = { authorization: `Bearer ${signIn.json.accessToken}` };
  // µ-USD per million tokens (integers: $2.50 per 1M = 2500000), never a float
  const price = (model, kind, microsPerMillion, provider = 'openai') => ({ provider, model, kind, microsPerMillion });
  // sandbox executions are quoted and held like model calls (provider `sandbox`, model = the template): per million
  // CPU-ms, MB-ms of memory and wall-ms; a tenant without these prices gets 503 for every execution (fail closed)
  const sandbox = ['small', 'default', 'large'].flatMap((template) => [
    price(template, 'cpu_ms', '100000', 'sandbox'),
    price(template, 'memory_mb_ms', '1000', 'sandbox'),
    price(template, 'wall_ms', '10000', 'sandbox'),
  ]);
  const steps = [
    ['PUT', '/v1/price-tables', { currency: 'USD', entries: [price('gpt-4o', 'input_tokens', '2500000'), price('gpt-4o', 'output_tokens', '10000000'), price('gpt-4o-mini', 'input_tokens', '150000'), price('gpt-4o-mini', 'output_tokens', '600000'), ...sandbox] }],
    ['PUT', `/v1/budgets/tenant/${tenantId}`, { limitMicros: '100000000', period: 'month', timeZone: 'UTC', hard: true }],
  ];
  for (const [method, route, body] of steps) {
    const res = await post(`${billingUrl}${route}`, body, auth, ca, method);
    if (res.status >= 300) throw new Error(`demo billing: ${method} ${route} answered ${res.status}${res.json?.error ? ` (${res.json.error.message})` : ''}`);
  }
}

/**
 * The demo tenant's models, with the administrator's own token (`auth:admin` administers
 * the tenant's router too): the provider stand-in of `npm start` as a private provider
 * (inside the perimeter: every class of data may go to it, no key), its model `demo-local`
 * and the route `default` to it. Prices are µ-USD per million tokens.
 */
async function seedDemoRouter({ routerUrl, providerUrl, ca, accessToken }) {
  const auth = { authorization: `Bearer ${accessToken}` };
  const steps = [
    ['PUT', '/v1/router/providers/demo-standin', { kind: 'openai', baseUrl: providerUrl, compliance: 'private' }],
    ['PUT', '/v1/router/models/demo-local', { providerId: 'demo-standin', upstreamModel: 'demo-local', contextWindow: 32000, maxOutputTokens: 1024, inputMicrosPerMTok: 150000, outputMicrosPerMTok: 600000 }],
    ['PUT', '/v1/router/routes/default', { candidates: ['demo-local'] }],
  ];
  for (const [method, route, body] of steps) {
    const res = await post(`${routerUrl}${route}`, body, auth, ca, method);
    if (res.status >= 300) throw new Error(`demo router: ${method} ${route} answered ${res.status}${res.json?.error ? ` (${res.json.error.message})` : ''}`);
  }
}

/**
 * Options: authUrl (https://127.0.0.1:7101), policyUrl (https://127.0.0.1:7102; the demo
 * policy is seeded when given), billingUrl (https://127.0.0.1:7107; the demo price table and
 * tenant budget are seeded when given), routerUrl and providerUrl (https://127.0.0.1:7106 and
 * the provider stand-in's http://127.0.0.1:7190/v1: the demo model and route are seeded when
 * given), ca (PEM), tokenFile (the AUTH_BOOTSTRAP_TOKEN_FILE
 * of that auth service), markerFile (remembers which tenant was seeded: never the password),
 * print (defaults to console.log; the only place the password goes).
 * Resolves { created: true, tenantId, username, password, adminUserId } or { created: false, tenantId? }.
 */
async function seedDemo({ authUrl, policyUrl, billingUrl, routerUrl, providerUrl, ca, tokenFile, markerFile, tenantId = DEMO_TENANT, username = DEMO_ADMIN, print = console.log }) {
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
    if (policyUrl) {
      await seedDemoPolicy({ authUrl, policyUrl, ca, tenantId, username, password, adminUserId: res.json.adminUserId })
        .then(() => print('demo policy: role secrets-admin (every credential action but use) granted to the administrator'))
        .catch((e) => print(`demo policy not seeded: ${e.message}`));
    }
    if (billingUrl) {
      await seedDemoBilling({ authUrl, billingUrl, ca, tenantId, username, password })
        .then(() => print('demo billing: price table (gpt-4o, gpt-4o-mini, sandbox templates) and a hard tenant budget of $100 a month'))
        .catch((e) => print(`demo billing not seeded: ${e.message}`));
    }
    if (routerUrl && providerUrl) {
      await post(`${authUrl}/v1/tenants/${tenantId}/sign-in`, { username, password }, {}, ca)
        .then((signIn) => {
          if (signIn.status !== 200 || !signIn.json?.accessToken) throw new Error(`sign-in answered ${signIn.status}`);
          return seedDemoRouter({ routerUrl, providerUrl, ca, accessToken: signIn.json.accessToken });
        })
        .then(() => print(`demo models: the provider stand-in (${providerUrl}) as private model demo-local, route default → demo-local (see services/llm-router/README.md for curl and the OpenAI SDK)`))
        .catch((e) => print(`demo models not seeded: ${e.message}`));
    }
    print(
      `sign in: curl --cacert .palisade/pki/ca.crt -H 'content-type: application/json' ` +
        `-d '{"username":"${username}","password":"${password}"}' ${authUrl}/v1/tenants/${tenantId}/sign-in`,
    );
    return { created: true, tenantId, username, password, adminUserId: res.json.adminUserId };
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

module.exports = { seedDemo, seedDemoRouter, DEMO_TENANT, DEMO_ADMIN };
