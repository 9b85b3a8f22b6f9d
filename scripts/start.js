// `npm start` after set-up: runs the seven services, prints their URLs once all are
// ready, and stops them (and the infrastructure this run started) on Ctrl-C.
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { REPO, infraEnv, startServices, waitReady } = require('./platform-runner');
const { seedDemo } = require('./seed-demo');

async function main() {
  const startedInfra = process.argv.includes('--started-infra');
  const t0 = Date.now();
  // auth keeps identity-provider secrets in the credential service (NATS request-reply);
  // the credential service asks the policy service who may do what (not token scopes).
  const envFor = {
    auth: { AUTH_IDP_SECRETS: process.env.AUTH_IDP_SECRETS ?? 'vault' },
    credential: { CREDENTIAL_ACCESS_POLICY: process.env.CREDENTIAL_ACCESS_POLICY ?? 'policy' },
  };
  const handles = startServices({ envFor: (name) => envFor[name] ?? {} });
  // A model provider stand-in (OpenAI and Anthropic wire formats, answers `echo: …`): the
  // demo tenant's private model behind the llm-router (Node runs the TypeScript as it is).
  const providerPort = Number(process.env.LLM_ROUTER_DEMO_PROVIDER_PORT ?? 7190);
  const providerLog = fs.openSync(path.join(REPO, '.palisade', 'logs', 'provider-standin.log'), 'a');
  const provider = spawn(process.execPath, ['--no-warnings', path.join(REPO, 'services/llm-router/test/support/provider-standin.ts'), String(providerPort)], { stdio: ['ignore', providerLog, providerLog] });
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping services…');
    await Promise.all(handles.map((h) => h.stop()));
    provider.kill();
    if (startedInfra) {
      console.log('stopping the infrastructure this run started…');
      execFileSync('bash', ['deploy/local/down.sh'], { cwd: REPO, stdio: 'inherit' });
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  for (const h of handles) {
    h.exited.then(({ code, signal }) => {
      if (!stopping) {
        console.error(`${h.name} exited (code ${code}, signal ${signal}); see .palisade/logs/${h.name}.log`);
        void stop(1);
      }
    });
  }
  try {
    const readyAt = await waitReady(handles);
    const rows = handles.map((h) => ({
      service: h.name,
      url: `https://127.0.0.1:${h.port}`,
      docs: `https://127.0.0.1:${h.port}/docs`,
      'ready after': `${(readyAt[h.name] / 1000).toFixed(1)} s`,
    }));
    console.table(rows);
    console.log(`all ${handles.length} services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (services only; infrastructure before that)`);
    console.log('CA certificate for curl: curl --cacert .palisade/pki/ca.crt https://127.0.0.1:7101/health/ready');
    console.log('logs: .palisade/logs/<service>.log — Ctrl-C stops everything this run started');
    const auth = handles.find((h) => h.name === 'auth');
    if (auth) {
      // The demo tenant, through auth's bootstrap API (the token file auth reads in dev-ca mode).
      const pki = infraEnv().PALISADE_PKI_DIR;
      const authDir = path.join(path.dirname(pki), 'auth');
      const policy = handles.find((h) => h.name === 'policy');
      const billing = handles.find((h) => h.name === 'billing');
      const router = handles.find((h) => h.name === 'llm-router');
      await seedDemo({
        authUrl: `https://127.0.0.1:${auth.port}`,
        ...(policy ? { policyUrl: `https://127.0.0.1:${policy.port}` } : {}),
        ...(billing ? { billingUrl: `https://127.0.0.1:${billing.port}` } : {}),
        ...(router ? { routerUrl: `https://127.0.0.1:${router.port}`, providerUrl: `http://127.0.0.1:${providerPort}/v1` } : {}),
        ca: fs.readFileSync(path.join(pki, 'ca.crt')),
        tokenFile: process.env.AUTH_BOOTSTRAP_TOKEN_FILE ?? path.join(authDir, 'bootstrap.token'),
        markerFile: path.join(authDir, 'demo-tenant.json'),
      }).catch((e) => console.error(String(e.message ?? e)));
    }
  } catch (error) {
    console.error(String(error.message ?? error));
    await stop(1);
  }
}

void main();
