import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_NAMES, type ServiceName } from '@palisade/contracts';
import { createTestSchema, fuzzCases, fuzzProblems, httpsCaller, infra, TEST_APP_ROLE, TEST_DATABASE, TEST_OWNER, type OpenApiDocument, type TestSchema } from '@palisade/testing';

// Every route of every service's OpenAPI document, sent what an attacker or a broken
// client sends (libs/testing/src/fuzz.ts), as the demo tenant's administrator and as
// nobody. A 5xx, a stack trace or an echoed secret fails the test. The seven built
// services run on ports 12101..12107 (offset 5000) in throw-away schemas.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../scripts/platform-runner.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { seedDemo } = require('../scripts/seed-demo.js');
const OFFSET = 5000;
const IN_FLIGHT = 6;

describe('fuzzing every route of the seven services', () => {
  const bootstrapTokenFile = join(mkdtempSync(join(tmpdir(), 'palisade-fuzz-')), 'bootstrap.token');
  const schemas = new Map<ServiceName, TestSchema>();
  let handles: Array<{ name: string; port: number; stop(): Promise<unknown> }> = [];
  let admin: { username: string; password: string; adminUserId: string };
  const port = (service: ServiceName) => handles.find((h) => h.name === service)!.port;

  beforeAll(async () => {
    for (const service of SERVICE_NAMES) schemas.set(service, await createTestSchema('fuzz'));
    handles = runner.startServices({
      portOffset: OFFSET,
      env: { LOG_LEVEL: 'error', PGDATABASE: TEST_DATABASE, PGUSER: TEST_APP_ROLE, PG_MIGRATION_USER: TEST_OWNER },
      envFor: (service: ServiceName) => ({
        PG_SCHEMA: schemas.get(service)!.schema,
        ...(service === 'auth' ? { AUTH_BOOTSTRAP_TOKEN_FILE: bootstrapTokenFile, AUTH_IDP_SECRETS: 'vault' } : {}),
      }),
      logDir: join(infra('PALISADE_HOME'), 'logs', 'fuzz'),
    });
    await runner.waitReady(handles, { timeoutMs: 120000 });
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    admin = await seedDemo({
      authUrl: `https://127.0.0.1:${port('auth')}`,
      policyUrl: `https://127.0.0.1:${port('policy')}`,
      ca,
      tokenFile: bootstrapTokenFile,
      markerFile: join(mkdtempSync(join(tmpdir(), 'palisade-fuzz-demo-')), 'demo-tenant.json'),
      print: () => undefined,
    });
  }, 180000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    for (const schema of schemas.values()) await schema.drop();
  });

  /** A fresh administrator token: a case may end the session it was sent with. */
  async function adminToken(): Promise<string> {
    const signIn = await httpsCaller(port('auth'))('/v1/tenants/demo/sign-in', { body: { username: admin.username, password: admin.password } });
    expect(signIn.status).toBe(200);
    return signIn.json.accessToken as string;
  }

  it.each(SERVICE_NAMES)('%s answers every malformed request with a 4xx that echoes no secret', async (service) => {
    const call = httpsCaller(port(service));
    const doc = (await call('/docs/openapi.json')).json as OpenApiDocument;
    expect(Object.keys(doc.paths).length).toBeGreaterThan(3);
    const cases = fuzzCases(doc, {
      known: { tenantId: 'demo', tenant: 'demo' },
      // Signing out ends the token the rest of the cases use; it takes no input to malform.
      skip: (method, path) => /sign-out$/.test(path),
    });
    const failures: string[] = [];
    for (const as of ['administrator', 'nobody'] as const) {
      const token = as === 'administrator' ? await adminToken() : undefined;
      const secrets = [admin.password, ...(token ? [token] : [])];
      // A few cases in flight at once: the suite's time, not a load test.
      for (let i = 0; i < cases.length; i += IN_FLIGHT) {
        await Promise.all(
          cases.slice(i, i + IN_FLIGHT).map(async (c) => {
            const reply = await call(c.path, { method: c.method, headers: c.headers, raw: c.raw, token }).catch((e: Error) => ({ status: 0, body: e.message }));
            const problems = fuzzProblems(reply, secrets);
            if (problems.length > 0) failures.push(`${c.method} ${c.path.slice(0, 120)} as ${as} (${c.why}): ${problems.join(', ')}: ${reply.body.slice(0, 200)}`);
          }),
        );
      }
    }
    expect(failures).toEqual([]);
  }, 600000);
});
