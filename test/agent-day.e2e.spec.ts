import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import OpenAI from 'openai';
import { EVENTS_STREAM, SERVICE_NAMES, type ServiceName } from '@palisade/contracts';
import { kafkaClient } from '@palisade/kafka';
import { connectNats } from '@palisade/nats';
import { issueCertificate, loadCa, ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, infra, TEST_APP_ROLE, TEST_DATABASE, TEST_OWNER, type TestSchema } from '@palisade/testing';
import { HecReceiver } from '../services/audit/test/feeds-hec-receiver';
import { readTopics, tenantSealed, verifyAuditLog, type RawRecord } from './agent-day/audit-verifier';
import { dayData, markersOf } from './agent-day/data';
import { AgentDay, runAuditCli } from './agent-day/day';
import { jetStreamPlaces, logPlaces, postgresPlaces, search, type Finding } from './agent-day/stores';

// One agent's day (/work/shared/design/agent-path.md, issue 16), end to end over the public
// APIs: the seven built services as processes on the real infrastructure (PostgreSQL, TLS
// NATS with JetStream, Kafka, crun), each in a throw-away schema, at port offset 9500
// (auth 16601 … billing 16607). Tokens are the auth service's own: people sign in, the
// agent exchanges its key. Tenant `acme-…` lives the day; tenant `rival-…` must see none of it.
// The day's steps are test/agent-day/day.ts, shared with `npm run demo`; this file asserts.
// Nothing is timed: asynchronous effects are awaited with `eventually`.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../scripts/platform-runner.js');
const OFFSET = 9500;
const port = (service: ServiceName) => runner.SERVICES[service] + OFFSET;
const data = dayData();
const suffix = data.suffix;
const OPS = `ops-${suffix}`; // the platform operator's tenant (bootstrap)
const ACME = `acme-${suffix}`;
const RIVAL = `rival-${suffix}`;
const PASSWORD = data.password;
const INSTANCE = `day${suffix}`; // the orchestrator's containers, cgroups and network namespaces
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = INSTANCE;
const AUDIT_TOPIC = `palisade.audit.e2eday.${suffix}`;
const CHECKPOINT_TOPIC = `${AUDIT_TOPIC}.checkpoints`;
const GERRIT_TOKEN = data.gerritToken;
const { email: EMAIL, iban: IBAN, card: CARD } = data;
const HEC_TOKEN = `hec-${randomBytes(8).toString('hex')}`;

jest.setTimeout(120_000);

type Handle = { name: string; port: number; stop(): Promise<unknown> };

describe("one agent's day (seven services, two tenants)", () => {
  const workDir = mkdtempSync(join(tmpdir(), 'palisade-agent-day-'));
  const logDir = join(infra('PALISADE_HOME'), 'logs', 'e2e-agent-day', suffix);
  const schemas = new Map<ServiceName, TestSchema>();
  let handles: Handle[] = [];
  let admin: ServiceIdentity;
  let hec: HecReceiver;
  let siemCa = '';
  const day = new AgentDay({ port, tenant: ACME, rival: RIVAL, data });
  const { tok, id } = day;
  const since = day.since;
  /** The audit topics as read in step 10 (raw), searched again in step 11. */
  let topics: Record<string, RawRecord[]> = {};

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    admin = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    await deleteAuditDurable();
    await day.startStandIns();
    // the tenant's SIEM: a Splunk HEC receiver with a certificate of the development CA
    const cert = await issueCertificate(await loadCa(infra('PALISADE_PKI_DIR')), { kind: 'server', name: 'siem', dns: ['localhost'], ips: ['127.0.0.1'] });
    siemCa = cert.caPem;
    hec = new HecReceiver(HEC_TOKEN, { cert: cert.certPem, key: cert.keyPem });
    await hec.up();

    for (const service of SERVICE_NAMES) schemas.set(service, await createTestSchema('day'));
    const tokenFile = join(workDir, 'bootstrap.token');
    writeFileSync(tokenFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    const envFor: Partial<Record<ServiceName, Record<string, string>>> = {
      auth: { AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile, AUTH_OPERATOR_TENANT: OPS, AUTH_ADDRESS_LOCKOUT_THRESHOLD: '10000' },
      credential: { CREDENTIAL_ACCESS_POLICY: 'policy' },
      audit: {
        AUDIT_TOPIC,
        AUDIT_CHECKPOINT_TOPIC: CHECKPOINT_TOPIC,
        AUDIT_CONSUMER: 'e2eday',
        AUDIT_DELIVER_POLICY: 'new',
        AUDIT_KEK_FILE: join(workDir, 'audit-kek.key'),
        // the tenant's SIEM stand-in listens on this host
        AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS: 'true',
      },
    };
    // the orchestrator starts in step 1, once the vault holds the secret its egress rule names
    handles = start(SERVICE_NAMES.filter((s) => s !== 'sandbox-orchestrator'), envFor);
    await runner.waitReady(handles, { timeoutMs: 120_000 });

    // the platform operator (bootstrap) provisions the two tenants; its auditor verifies the chain
    const bootstrap = await day.call('auth', '/v1/bootstrap', undefined, {
      method: 'POST',
      headers: { authorization: `Bootstrap ${readFileSync(tokenFile, 'utf8')}` },
      body: { tenantId: OPS, tenantName: 'Operations', admin: { username: 'operator', password: PASSWORD } },
    });
    expect(bootstrap.status).toBe(201);
    tok.operator = await day.signIn(OPS, 'operator');
    await day.provisionTenants(tok.operator);
    const opsAuditor = await day.ok(day.call('auth', '/v1/users', tok.operator, { method: 'POST', body: { username: 'platform-auditor', password: PASSWORD, roles: ['member'] } }));
    await day.ok(day.call('auth', `/v1/users/${opsAuditor.json.userId}/platform-auditor`, tok.operator, { method: 'PUT', body: { granted: true } }));
    tok.platformAuditor = await day.signIn(OPS, 'platform-auditor');
  }, 240_000);

  function start(services: ServiceName[], envFor: Partial<Record<ServiceName, Record<string, string>>>): Handle[] {
    return runner.startServices({
      services,
      portOffset: OFFSET,
      // info: the marker search of step 11 reads what the services log at their usual level
      env: { LOG_LEVEL: 'info', PGDATABASE: TEST_DATABASE, PGUSER: TEST_APP_ROLE, PG_MIGRATION_USER: TEST_OWNER },
      envFor: (service: ServiceName) => ({ PG_SCHEMA: schemas.get(service)!.schema, ...envFor[service] }),
      logDir,
    });
  }

  async function deleteAuditDurable(): Promise<void> {
    const nc = await connectNats({ servers: infra('NATS_URL'), identity: admin, name: 'e2e-agent-day' });
    try {
      await (await nc.jetstreamManager()).consumers.delete(EVENTS_STREAM, 'audit-e2eday').catch(() => undefined);
    } finally {
      await nc.drain();
    }
  }

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await Promise.all([day.stopStandIns(), hec?.down()]);
    await deleteAuditDurable().catch(() => undefined);
    const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity: admin, clientId: 'e2e-agent-day', logLevel: 'nothing' as never });
    const kadmin = kafka.admin();
    await kadmin.connect();
    await kadmin.deleteTopics({ topics: [AUDIT_TOPIC, CHECKPOINT_TOPIC] }).catch(() => undefined);
    await kadmin.disconnect();
    admin?.stop();
    for (const schema of schemas.values()) await schema.drop();
  }, 60_000);

  it('1. people set the day up through the public APIs: team, agent, tools, vault, egress rule, budgets, prices, models, the SIEM feed', async () => {
    await day.setUpPeople();
    const agent = await day.ok(day.call('auth', `/v1/agents/${id.agent}`, tok.admin));
    expect(agent.json).toMatchObject({ name: 'release-bot', ownerId: id.alice, teamId: 'platform', status: 'active' });
    await day.setUpPolicy();
    const secret = await day.storeGerritToken();
    expect(secret.body).not.toContain(GERRIT_TOKEN);

    // the orchestrator starts; the egress rule goes through its API once it is ready (below)
    const [orchestrator] = start(['sandbox-orchestrator'], { 'sandbox-orchestrator': { SANDBOX_INSTANCE: INSTANCE } });
    handles.push(orchestrator);

    const effective = await day.setUpBilling();
    expect(effective.body).toContain('llama-local');
    const catalog = await day.setUpModels();
    expect(catalog.json.providers.onprem).toMatchObject({ compliance: 'private' });
    expect(catalog.json.providers.cloud).toMatchObject({ compliance: 'external' });

    // the tenant's SIEM: dora (admin and auditor) creates the HEC feed; it delivers the tenant's log from the beginning
    const feed = await day.ok(day.call('audit', '/v1/audit/feeds', tok.dora, { method: 'POST', body: { kind: 'splunk-hec', url: hec.url, token: HEC_TOKEN, caPem: siemCa } }), [201]);
    id.feed = feed.json.id;
    day.see('feed', id.feed);
    expect(feed.body).not.toContain(HEC_TOKEN);

    await runner.waitReady([orchestrator], { timeoutMs: 90_000 });
    // the egress rule (PUT /v1/egress-rules/tenant, the admin's policy:admin): GET /a/changes/ on the Gerrit stand-in, the vault's secret injected as Authorization
    await day.putEgressRule();
  });

  it('2. the agent exchanges its key for a token acting for alice, in team platform', async () => {
    const { claims, me } = await day.agentSignsIn();
    expect(claims).toMatchObject({ ptp: 'agent', sub: id.agent, tid: ACME, act: { sub: id.alice }, teams: ['platform'], dept: 'platform' });
    expect(me.json).toMatchObject({ agentId: id.agent, actingFor: id.alice });
  });

  it('3. a prompt with an e-mail, an IBAN and a card: masked, routed to the private model, reserved and settled in billing, audited with the text only in personal', async () => {
    const r = await day.maskedPrompt();
    expect(r.requestId).toBeTruthy();
    // the caller gets its own values back; the external provider received nothing, the private one only placeholders
    expect(r.completion.choices[0].message.content).toContain(EMAIL);
    expect(r.cloudReceived).toHaveLength(0);
    expect(r.onpremReceived).toHaveLength(1);
    for (const value of [EMAIL, IBAN, CARD, IBAN.replace(/ /g, ''), CARD.replace(/ /g, '')]) expect(r.onpremReceived[0].body).not.toContain(value);
    // nor any four-digit group of either: each masked whole, as what it is
    for (const group of [...IBAN.split(' ').slice(1, 5), ...CARD.split(' ')]) expect(r.onpremReceived[0].body).not.toContain(group);
    for (const placeholder of ['⟦EMAIL_1⟧', '⟦IBAN_1⟧', '⟦CARD_1⟧']) expect(r.onpremReceived[0].body).toContain(placeholder);
    // billing: the hold was reserved and settled with the real usage: posted > 0, nothing pending
    expect(Number(r.budget.postedMicros)).toBeLessThanOrEqual(Number(r.budget.limitMicros));
    expect(r.usage.body).toContain(id.agent);
    // audit: the prompt only in `personal` (alice's)
    expect(r.audited.event).toMatchObject({ tenantId: ACME, actor: { type: 'agent', id: id.agent }, data: { providerId: 'onprem', classification: 'confidential', outcome: 'served' } });
    expect(r.audited.event.personal).toMatchObject({ subjectId: id.alice });
    expect(JSON.stringify(r.audited.event.personal)).toContain(EMAIL);
    const outsidePersonal = JSON.stringify({ ...r.audited.event, personal: undefined });
    for (const value of [EMAIL, IBAN, CARD]) expect(outsidePersonal).not.toContain(value);
  });

  it("4-5. execute_code runs in a sandbox of the agent's session: Gerrit through the proxy with the token injected (never seen by the code); another host and direct connections refused and audited", async () => {
    const r = await day.executeCode();
    expect(r.sandbox.json).toMatchObject({ sessionId: id.session, status: 'ready' });
    expect(r.run.json).toMatchObject({ status: 'finished', reason: 'exited', exitCode: 0 });
    expect(r.out).toContain('answer 42');
    // another host and every direct connection are refused; the code's output and environment hold no token
    expect(r.out).toMatch(/refused https:\/\/exfil\.example\/upload .*403/);
    // a name outside the rules does not resolve (the sandbox's resolver answers only names its rules allow)
    expect(r.out).toContain('dns refused data.exfil.example');
    expect(r.out).not.toContain('resolved data.exfil.example');
    expect(r.out).not.toContain('direct connected');
    expect(r.out.match(/direct refused/g)).toHaveLength(3);
    expect(r.out).toContain('HTTPS_PROXY');
    expect(r.out).not.toContain(GERRIT_TOKEN);
    // injection: the proxy leased the vault's token for this session and tool, and Gerrit received it; the code saw only the answer
    expect(r.out).toMatch(/fetched https:\/\/gerrit\.acme\.test:\d+\/a\/changes\/\?q=status:open 200 .*release 4\.2/);
    expect(day.gerritSeen).toEqual([{ path: '/a/changes/?q=status:open', authorization: `Bearer ${GERRIT_TOKEN}` }]);
    // the proxy's and the resolver's decisions, the refusals of exfil.example and of the lookup among them, are audited without the token
    expect(JSON.stringify(r.decisions)).toMatch(/"stage":"dns".*data\.exfil\.example|data\.exfil\.example.*"stage":"dns"/);
    expect(JSON.stringify(r.decisions)).not.toContain(GERRIT_TOKEN);
  });

  it('6. a critical payment waits for a person: the decision says approval required; not alice (four eyes across acting-for) but carol approves; that one call with those parameters is allowed once, no other', async () => {
    const r = await day.payment();
    expect(r.first).toMatchObject({ decision: 'requires_approval', actionHash: expect.any(String) });
    expect(r.requested.json.actionHash).toBe(r.first.actionHash);
    // alice holds the approver role, but may not approve what her own agent asked; nor may the agent
    expect([r.byAlice.status, r.byAlice.json?.error?.message]).toEqual([403, 'the user an agent acts for may not approve or reject its request']);
    expect(r.byAgent.status).toBe(403);
    expect(r.approvalToken).toBeTruthy();
    // other parameters are not what was approved (and do not use the token up)
    expect(r.other).toMatchObject({ decision: 'deny', reason: expect.stringContaining('another action') });
    expect(r.allowed).toMatchObject({ decision: 'allow', rule: 'approval' });
    expect(r.again).toMatchObject({ decision: 'deny', reason: 'approval token already used' });
    expect(r.status).toBe('consumed');
  });

  it("7. the budget is spent: the next model call gets 429 naming the agent's budget; nothing was spent beyond the limit", async () => {
    const r = await day.spendBudget();
    expect(r.served).toBeGreaterThan(0);
    expect(r.refusal).toBeInstanceOf(OpenAI.RateLimitError);
    expect(r.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', budget: { level: 'agent', limitMicros: r.limit } });
    expect(r.error!.message).toContain(`the agent budget has no room for this request (limit ${r.limit} micro-USD, resets at`);
    expect(r.refusedCallReachedModel).toBe(0); // the refused call reached no model
    // what the served calls used is posted; posted and what is still held never exceed the limit
    expect(Number(r.after.postedMicros) + Number(r.after.pendingMicros)).toBeLessThanOrEqual(r.limit);
    expect(Number(r.settledAll.postedMicros)).toBeLessThanOrEqual(r.limit);
  });

  it('8. alice is erased (by the tenant\'s auditor admin): her records stay and verify, her personal data reads back as erased', async () => {
    const r = await day.eraseAlice();
    expect(r.before.length).toBeGreaterThan(0);
    expect(JSON.stringify(r.before)).toContain(EMAIL); // the prompt, opened for the auditor before the erasure
    expect([r.erased.status, r.erased.json]).toEqual([200, expect.objectContaining({ subjectId: id.alice, keysDestroyed: expect.any(Number) })]);
    expect(r.erased.json.keysDestroyed).toBeGreaterThan(0);
    // the same records, each one's personal data now erased; none of her data in the answer
    expect(r.after.map((i) => i.event.id)).toEqual(expect.arrayContaining(r.before.map((i) => i.event.id)));
    for (const item of r.after) expect(item.event.personal).toEqual({ subjectId: id.alice, erased: true });
    for (const value of [EMAIL, IBAN, CARD, data.aliceEmail]) expect(JSON.stringify(r.after)).not.toContain(value);
    // the erasure is itself audited
    const logged = await eventually(async () => {
      const page = await day.call('audit', `/v1/audit/events?type=audit.subject.erased&from=${encodeURIComponent(since)}`, tok.audrey);
      return (page.json?.items as Array<{ event: { data: { subjectId: string }; actor: unknown } }> | undefined)?.find((i) => i.event.data.subjectId === id.alice);
    }, 60_000, 500);
    expect(logged.event.actor).toEqual({ type: 'user', id: id.dora });
    // every record still verifies: the partitions of her records, verified from the topic by the platform auditor
    const verdicts = await day.verifyPartitions(tok.platformAuditor, [...new Set(r.before.map((i) => i.partition))]);
    for (const v of verdicts) {
      expect(['ok', 'unverified']).toContain(v.status);
      expect(v.failure).toBeUndefined();
    }
    // auth, the one service whose reads show a person's data: the erasure reached it (audit.subject.erased), her
    // account is ended for good and her name is gone from its user list
    expect(r.aliceInAuth).toEqual(expect.objectContaining({ userId: id.alice, username: `~erased:${id.alice}`, status: 'disabled' }));
  });

  it('9. the second tenant sees none of it: its admin, auditor and agent probe every id of the day on every route that takes one: 404 (or the refusal any id gets) and no data', async () => {
    const rival = tok.rivalAdmin;
    const foreign = [id.agent, id.session, id.sandbox, id.approval, id.alice, ACME].filter(Boolean);
    const probe = async (service: ServiceName, path: string, token: string, status: number) => {
      const r = await day.call(service, path, token);
      expect([service, path, r.status]).toEqual([service, path, status]);
      for (const s of foreign) expect(r.body).not.toContain(s);
      return r;
    };
    // lists: empty for the rival
    expect((await probe('auth', '/v1/agents', rival, 200)).json.map((a: { name: string }) => a.name)).toEqual(['rival-bot']);
    const sessions = await probe('sandbox-orchestrator', '/v1/sessions', rival, 200);
    expect(sessions.json.items ?? sessions.json).toEqual([]);
    await probe('billing', `/v1/usage?from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&groupBy=agent`, rival, 200);
    const catalog = await probe('llm-router', '/v1/router/catalog', rival, 200);
    expect(catalog.json).toMatchObject({ providers: {}, models: {}, routes: {} });
    const page = await probe('audit', `/v1/audit/events?from=${encodeURIComponent(since)}&limit=1000`, tok.rivalAuditor, 200);
    expect((page.json.items as Array<{ event: { tenantId: string } }>).every((i) => i.event.tenantId === RIVAL)).toBe(true);
    const named = await probe('audit', `/v1/audit/events?tenant=${ACME}&type=llm-router.model-call.recorded&from=${encodeURIComponent(since)}`, tok.rivalAuditor, 200);
    expect(named.json.items).toEqual([]);

    // every id of the day on every route that takes one, as each of the rival's three callers
    const results = await day.probeAsRival();
    expect(results.length).toBeGreaterThan(250);
    // the answer for acme's id is the answer for an id that never existed: nothing tells them apart
    expect(results.filter((p) => p.status !== p.unknownStatus)).toEqual([]);
    // never a success, never any of the day's ids or data in the answer
    expect(results.filter((p) => p.leaked.length > 0)).toEqual([]);
    expect(results.filter((p) => p.status < 400 && !p.path.startsWith('audit /v1/audit/events'))).toEqual([]);
    // the admin, the one caller allowed to act on such routes at all, gets 404 on every resource route
    expect(results.filter((p) => p.caller === 'rival admin' && !p.path.startsWith('audit /v1/audit/events') && !p.path.includes('/v1/audit/subjects/') && p.status !== 404)).toEqual([]);
  });

  it('10. the whole audit topic verifies with `palisade audit verify` and with a verifier written from audit-log-format.md alone; the SIEM received the tenant\'s records in order', async () => {
    const keysUrl = `https://127.0.0.1:${port('audit')}/v1/audit/keys`;
    const jwks = (await day.ok(day.call('audit', '/v1/audit/keys', undefined))).json;
    // the independent verifier: read both topics raw until every record of acme's day is sealed by a checkpoint (the
    // topic holds every event of the shared NATS too: records after a partition's last checkpoint link, unsealed yet)
    let verdict: ReturnType<typeof verifyAuditLog> | undefined;
    await eventually(async () => {
      topics = await readTopics({ brokers: infra('KAFKA_BROKERS'), tlsDir: join(infra('PALISADE_HOME'), 'kafka', 'tls', 'admin'), topics: [AUDIT_TOPIC, CHECKPOINT_TOPIC] });
      verdict = verifyAuditLog(topics[AUDIT_TOPIC], topics[CHECKPOINT_TOPIC], jwks);
      return verdict.failures.length > 0 || tenantSealed(topics[AUDIT_TOPIC], verdict, ACME) ? verdict : undefined;
    }, 90_000, 1000);
    expect(verdict!.failures).toEqual([]);
    expect(verdict!.ok).toBe(true);
    expect(verdict!.records).toBeGreaterThan(50);
    expect(verdict!.checkpoints).toBeGreaterThan(0);
    expect(tenantSealed(topics[AUDIT_TOPIC], verdict!, ACME)).toBe(true);

    // the CLI on the live topic
    const cli = await runAuditCli({ brokers: infra('KAFKA_BROKERS'), topic: AUDIT_TOPIC, checkpointTopic: CHECKPOINT_TOPIC, keysUrl });
    expect([cli.code, cli.out]).toEqual([0, expect.stringMatching(/^OK: verified \d+ record\(s\) in \d+ partition\(s\) and \d+ checkpoint\(s\)$/)]);
    expect(Number(/verified (\d+) record/.exec(cli.out)![1])).toBeGreaterThanOrEqual(verdict!.records);

    // the SIEM feed: every record of acme's day, in topic order (partition, seq), each once, as it is in the topic
    const acme = topics[AUDIT_TOPIC].map((r) => JSON.parse(r.value)).filter((r) => r.event.tenantId === ACME);
    expect(acme.length).toBeGreaterThan(20);
    const received = await eventually(() => {
      const records = hec.events.filter((e) => e.sourcetype === 'palisade:audit:record').map((e) => e.event as { partition: number; seq: number; hash: string; event: { tenantId: string } });
      return records.length >= acme.length ? records : undefined;
    }, 60_000, 500);
    expect(received.every((r) => r.event.tenantId === ACME)).toBe(true);
    expect(received.slice(0, acme.length).map((r) => `${r.partition}/${r.seq}/${r.hash}`)).toEqual(acme.map((r) => `${r.partition}/${r.seq}/${r.hash}`));
  });

  it("11. a marker search for the day's secrets and personal data over logs, event stores, JetStream and the audit topic finds them only encrypted (personal data sealed by its producer before it is stored: issue 10)", async () => {
    const markers = markersOf(data, {
      'agent API key': day.agentKey,
      "agent's access token": tok.agent,
      "admin's access token": tok.admin,
      "alice's access token": tok.alice,
      'approval token': tok.approval,
      'SIEM token': HEC_TOKEN,
    });
    const owner = schemas.get('auth')!.owner;
    const places = [
      ...logPlaces(logDir),
      ...(await postgresPlaces({ host: owner.host, port: owner.port, database: TEST_DATABASE, user: TEST_OWNER }, [...schemas].map(([service, s]) => ({ service, schema: s.schema })))),
      ...(await jetStreamPlaces({ servers: infra('NATS_URL'), identity: admin, since })),
      ...Object.entries(topics).flatMap(([topic, records]) => records.map((r) => ({ where: `kafka ${topic}`, text: r.value }))),
    ];
    expect(places.some((p) => p.where.startsWith('postgres llm-router events'))).toBe(true);
    expect(places.some((p) => p.where.startsWith('jetstream palisade.events.llm-router.'))).toBe(true);
    expect(places.some((p) => p.where === `kafka ${AUDIT_TOPIC}`)).toBe(true);
    const findings: Finding[] = search(places, markers);
    // secrets: nowhere, ever
    expect(findings.filter((f) => f.kind === 'secret')).toEqual([]);
    // personal data: nowhere in plaintext either (the producers seal `personal` for the audit service before their event
    // stores hold it, so neither their `events` tables, nor JetStream, nor the audit topic, nor a log has it)
    expect(findings).toEqual([]);
    // …and the prompts and alice's contact are there, sealed (the search above did not pass for want of them): in the
    // producers' event stores (their outboxes) and JetStream transport-sealed, locally, for the audit service alone
    // (HPKE to its transport key: no seal request per append); in the audit topic sealed under alice's own key
    const sealedAs = (alg: string) => new RegExp(`"personal":\\s*\\{[^{}]*"alg":\\s*"${alg}"`);
    for (const where of ['postgres llm-router events llm-router.model-call.recorded', 'jetstream palisade.events.llm-router.model-call.recorded', 'postgres auth events auth.user.registered', 'jetstream palisade.events.auth.user.registered']) {
      expect({ where, sealed: places.some((p) => p.where === where && sealedAs('HPKE-X25519-SHA256-EXPORT-A256GCM').test(p.text)) }).toEqual({ where, sealed: true });
    }
    const topicRecords = topics[AUDIT_TOPIC].map((r) => JSON.parse(r.value) as { event: { tenantId: string; type: string; personal?: Record<string, unknown> } });
    const modelCalls = topicRecords.filter((r) => r.event.tenantId === ACME && r.event.type === 'llm-router.model-call.recorded' && r.event.personal);
    expect(modelCalls.length).toBeGreaterThan(0);
    // (members in JCS order in the record)
    for (const r of modelCalls) expect([Object.keys(r.event.personal!), r.event.personal!.alg]).toEqual([['alg', 'keyId', 'sealed', 'subjectId'], 'A256GCM']);
    // the transport form never reaches the audit topic (audit-log-format.md)
    expect(topicRecords.filter((r) => r.event.personal && 'enc' in r.event.personal)).toEqual([]);
  });
});
