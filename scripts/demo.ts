import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import type { ServiceName } from '@palisade/contracts';
import { infra } from '@palisade/testing';
import { readTopics, tenantSealed, verifyAuditLog } from '../test/agent-day/audit-verifier';
import { dayData, markersOf } from '../test/agent-day/data';
import { AgentDay, runAuditCli } from '../test/agent-day/day';

/**
 * `npm run demo` (started by scripts/demo.js): one agent's day against the platform that
 * `npm start` runs, told step by step. It signs in as the platform operator `npm start`
 * created (its password, shown once by `npm start`, from PALISADE_DEMO_PASSWORD or asked on
 * the terminal), provisions two fresh tenants of its own (`acme-<random>` lives the day,
 * `rival-<random>` must see none of it) and changes nothing else.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('./platform-runner.js');
const AUDIT_TOPIC = process.env.AUDIT_TOPIC ?? 'palisade.audit.v1';
const CHECKPOINT_TOPIC = process.env.AUDIT_CHECKPOINT_TOPIC ?? 'palisade.audit.checkpoints.v1';

const t0 = Date.now();
const clock = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
let told = 0;
let current: AgentDay | undefined;
const step = (n: string, title: string) => {
  // calls the previous step had to repeat until the policy decision settled (told, not hidden)
  for (const w of current?.waits.slice(told) ?? []) say(`(waited ${(w.ms / 1000).toFixed(1)} s, ${w.attempts} attempts, for a decision to settle; first answer: ${w.first})`);
  told = current?.waits.length ?? 0;
  console.log(`\n${clock()}  ${n}. ${title}`);
};
const say = (text: string) => console.log(`           ${text}`);
const usd = (micros: string | number) => `$${(Number(micros) / 1_000_000).toFixed(6)}`;

function askHidden(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput.bind(rl);
  let asked = false;
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    if (!asked) write(s);
  };
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer.trim());
    });
    asked = true;
  });
}

async function operatorPassword(): Promise<string> {
  if (process.env.PALISADE_DEMO_PASSWORD) return process.env.PALISADE_DEMO_PASSWORD;
  if (!process.stdin.isTTY) throw new Error('set PALISADE_DEMO_PASSWORD to the demo administrator password `npm start` printed');
  return askHidden('password of the demo administrator (`npm start` printed it once): ');
}

export async function main(): Promise<number> {
  setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
  const port = (service: ServiceName) => runner.SERVICES[service] as number;
  const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
  for (const service of Object.keys(runner.SERVICES)) {
    const ready = await runner.get(`https://127.0.0.1:${runner.SERVICES[service]}/health/ready`, ca, 3000).catch(() => ({ status: 0 }));
    if (ready.status !== 200) {
      console.error(`${service} is not ready on https://127.0.0.1:${runner.SERVICES[service]}: start the platform first (npm start)`);
      return 1;
    }
  }
  const marker = join(infra('PALISADE_HOME'), 'auth', 'demo-tenant.json');
  const operator = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { tenantId: string; username: string }) : { tenantId: 'demo', username: 'admin@demo.example' };
  const data = dayData();
  const day = new AgentDay({ port, tenant: `acme-${data.suffix}`, rival: `rival-${data.suffix}`, data });
  current = day;
  const operatorToken = await day
    .ok(day.call('auth', `/v1/tenants/${operator.tenantId}/sign-in`, undefined, { method: 'POST', body: { username: operator.username, password: await operatorPassword() } }))
    .then((r) => r.json.accessToken as string)
    .catch((e: Error) => {
      throw new Error(`the platform operator ${operator.username} could not sign in (${e.message})`);
    });

  console.log(`One agent's day on this platform (tenant acme-${data.suffix}; tenant rival-${data.suffix} must see none of it)`);
  try {
    await day.startStandIns();
    step('1', 'People set the day up through the public APIs');
    await day.provisionTenants(operatorToken);
    say(`The platform operator created tenants acme-${data.suffix} and rival-${data.suffix}, each with a security admin.`);
    await day.setUpPeople();
    say('The admin registered alice, carol (approves payments), audrey (auditor) and dora (auditor admin),');
    say(`team "platform" and agent "release-bot" (id ${day.id.agent}), owned by alice, with an API key.`);
    await day.setUpPolicy();
    say('Policy: alice and her agent may run tools and ask for payments; carol may approve; tools allowlisted for the agent:');
    say('gerrit, execute_code, payments.create. Deny by default for everything else.');
    const secret = await day.storeGerritToken();
    say(`The Gerrit token went into the vault (secret ${day.id.secret}, scope tool:gerrit). The answer holds only its id: ${secret.body.includes(data.gerritToken) ? 'NO, IT HELD THE VALUE' : 'yes'}.`);
    const egress = await day.call('sandbox-orchestrator', '/v1/egress-rules/tenant', day.tok.admin, { method: 'PUT', body: { rules: [day.egressRule()] } });
    if (egress.status === 200 || egress.status === 201) {
      say(`Egress rule "gerrit-changes": GET https://gerrit.acme.test:${day.gerritPort}/a/changes/* only, the vault's secret injected as the Authorization header.`);
    } else {
      say(`The orchestrator refused the egress rule (HTTP ${egress.status}): sandboxes of this tenant may reach nothing, so the Gerrit call below is refused too.`);
    }
    await day.setUpBilling();
    say('Billing: a price table; budgets: team platform $50 a month, the agent $5 a day (hard limits).');
    await day.setUpModels();
    say('Models: "local" on the private provider onprem (inside the perimeter), "gpt" on the external provider cloud;');
    say('route "default" prefers the external one.');

    step('2', 'The agent signs in');
    const { claims } = await day.agentSignsIn();
    const act = (claims.act as { sub?: string } | undefined)?.sub;
    say(`It exchanged its API key for a short-lived token: agent ${String(claims.sub)}, acting for alice (${act === day.id.alice ? 'alice' : act}), team ${String((claims.teams as string[])?.join(', '))}.`);

    step('3', 'A prompt with personal data, through the official OpenAI SDK');
    const prompt = await day.maskedPrompt();
    say(`Prompt: "${prompt.prompt}"`);
    const placeholders = [...new Set(prompt.onpremReceived[0]?.body.match(/⟦[A-Z_]+_\d+⟧/g) ?? [])];
    say(`Found and masked before any provider: ${placeholders.join(', ') || '(no placeholders seen)'}.`);
    say(`Routed to the private model because the request is ${String((prompt.audited.event.data as { classification?: string }).classification)}: onprem received ${prompt.onpremReceived.length} request(s), the external provider ${prompt.cloudReceived.length}.`);
    say(`What onprem saw: ${prompt.onpremReceived[0] ? JSON.parse(prompt.onpremReceived[0].body).messages.at(-1).content : '-'}`);
    say(`The agent got its own values back: "${prompt.completion.choices[0].message.content?.slice(0, 110)}…"`);
    say(`Billing reserved the worst case before the call and settled the real usage after it: ${usd(prompt.budget.postedMicros)} spent, nothing held.`);
    say(`The model call is in the audit log (event ${String(prompt.audited.event.id)}); the prompt text only in "personal", encrypted for alice.`);

    step('4-5', 'The model asks for execute_code: the code runs in a sandbox of the agent\'s session');
    const run = await day.executeCode();
    say(`Session ${day.id.session}, sandbox ${day.id.sandbox}; exit code ${String(run.run.json.exitCode)}; the code printed:`);
    for (const line of run.out.split('\n').filter((l) => /^(answer|fetched|refused|direct|dns|resolved)/.test(l))) say(`  | ${line.slice(0, 150)}`);
    const injected = day.gerritSeen.some((g) => g.authorization === `Bearer ${data.gerritToken}`);
    say(`Gerrit received the vault's token in the Authorization header: ${injected ? 'yes' : 'no'} (the proxy injected it; it is not shown here).`);
    say(`The token in the code's output or environment: ${run.out.includes(data.gerritToken) ? 'YES (a leak)' : 'no'}.`);
    const decisions = run.decisions.flatMap((d) => ((d.event.data as unknown as { decisions?: Array<{ outcome: string; stage: string; host: string; port: number; method?: string; path?: string; rule: string; reason?: string }> }).decisions ?? []));
    say(`The proxy's and the resolver's decisions, audited (class tool_call):`);
    for (const d of decisions) say(`  ${d.outcome.padEnd(8)} ${d.stage.padEnd(7)} ${d.method ? `${d.method} ` : ''}${d.host}:${d.port}${d.path ?? ''}  rule ${d.rule}${d.reason ? ` (${d.reason})` : ''}`);

    step('6', 'A critical action: a payment waits for a person');
    const pay = await day.payment();
    say(`Policy decision for payments.create of 1200 EUR to vendor-42: ${String(pay.first.decision)}.`);
    say(`alice tries to approve her own agent's request: HTTP ${pay.byAlice.status}, "${String(pay.byAlice.json?.error?.message)}".`);
    say(`the agent tries to approve it: HTTP ${pay.byAgent.status}. carol approves: a one-time token bound to these parameters.`);
    say(`With the token and amount 9999: ${String(pay.other.decision)} (${String(pay.other.reason)}); with the approved parameters: ${String(pay.allowed.decision)}; once more: ${String(pay.again.decision)} (${String(pay.again.reason)}).`);

    step('7', 'The budget runs out');
    const spend = await day.spendBudget();
    say(`The admin left the agent ${usd(600)} of room; ${spend.served} call(s) were served, then:`);
    say(`HTTP 429 ${String(spend.error?.code)}: "${String(spend.error?.message)}"`);
    say(`The refused call reached no model (${spend.refusedCallReachedModel} request). Spent ${usd(spend.settledAll.postedMicros)} of a ${usd(spend.limit)} limit; left ${usd(spend.limit - Number(spend.settledAll.postedMicros))}.`);

    step('8', 'Alice is erased from the audit log');
    const erased = await day.eraseAlice();
    say(`dora (the tenant's auditor admin) erased alice: ${erased.erased.status === 200 ? `${String(erased.erased.json.keysDestroyed)} key(s) destroyed` : `HTTP ${erased.erased.status}`}.`);
    const stillErased = erased.after.every((i) => (i.event.personal as { erased?: boolean } | undefined)?.erased === true);
    say(`Her ${erased.after.length} record(s) are still in the chain; their personal data reads back as erased: ${stillErased ? 'yes' : 'NO'}.`);
    say(`Auth heard of it: her account is ${String(erased.aliceInAuth?.status)}, and its user list names her "${String(erased.aliceInAuth?.username)}".`);

    step('9', 'The rival tenant probes every id of the day');
    const probes = await day.probeAsRival();
    const leaks = probes.filter((p) => p.leaked.length > 0 || p.status !== p.unknownStatus || (p.status < 400 && !p.path.startsWith('audit /v1/audit/events')));
    const counts = new Map<number, number>();
    for (const p of probes) counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
    const statuses = [...counts].sort(([a], [b]) => b - a).map(([status, n]) => `${n} × ${status}`).join(', ');
    say(`${probes.length} requests by its admin, auditor and agent on every route that takes an id: ${statuses}`);
    say('(404: not found; 403: the caller may not use the route at all, whatever the id; 200: the auditor\'s empty audit pages);');
    say(`answers that told an id of the day from one that never existed, or held its data: ${leaks.length}.`);

    step('10', 'The audit log verifies');
    const jwks = (await day.ok(day.call('audit', '/v1/audit/keys', undefined))).json;
    let verdict = verifyAuditLog([], [], jwks);
    let topics: Awaited<ReturnType<typeof readTopics>> = {};
    const tlsDir = join(infra('PALISADE_HOME'), 'kafka', 'tls', 'admin');
    for (let i = 0; i < 30; i++) {
      topics = await readTopics({ brokers: infra('KAFKA_BROKERS'), tlsDir, topics: [AUDIT_TOPIC, CHECKPOINT_TOPIC] });
      verdict = verifyAuditLog(topics[AUDIT_TOPIC], topics[CHECKPOINT_TOPIC], jwks);
      if (verdict.failures.length > 0 || tenantSealed(topics[AUDIT_TOPIC], verdict, day.o.tenant)) break;
      await new Promise((r) => setTimeout(r, 1000)); // the next checkpoint seals the day's last records (every 10 s)
    }
    const cli = await runAuditCli({ brokers: infra('KAFKA_BROKERS'), topic: AUDIT_TOPIC, checkpointTopic: CHECKPOINT_TOPIC, keysUrl: `https://127.0.0.1:${port('audit')}/v1/audit/keys` });
    say(`palisade audit verify: ${cli.out.split('\n')[0]}`);
    say(
      `independent verifier (written from audit-log-format.md, node:crypto + kafkajs): ${verdict.ok ? 'OK' : 'FAILED'}, ${verdict.records} record(s) in ${Object.keys(verdict.partitions).length} partition(s), ${verdict.checkpoints} signed checkpoint(s); ${verdict.unsealed} record(s) after the last checkpoints (linked, not yet signed)`,
    );
    for (const f of verdict.failures.slice(0, 5)) say(`  ${f}`);
    const ofDay = topics[AUDIT_TOPIC].filter((r) => r.value.includes(`"tenantId":"${day.o.tenant}"`));
    const sealed = tenantSealed(topics[AUDIT_TOPIC], verdict, day.o.tenant);
    say(`${ofDay.length} record(s) of today's tenant among them, ${sealed ? 'every one sealed by a signed checkpoint' : 'NOT all sealed by a signed checkpoint yet'}.`);
    say('(A SIEM feed, Splunk HEC or syslog, receives them per tenant; the e2e test checks one.)');

    step('11', "Markers: the day's secrets and personal data in the raw audit topic");
    const markers = markersOf(data, { 'agent API key': day.agentKey, 'approval token': day.tok.approval });
    const found = markers.filter((m) => ofDay.some((r) => r.value.includes(m.value)));
    say(`${markers.length} markers (the Gerrit token, passwords, the agent's key, the approval token, the e-mails, the IBAN, the card number)`);
    say(`found in plaintext in the audit topic: ${found.length === 0 ? 'none (personal data is there only encrypted, and now unreadable)' : found.map((m) => m.name).join(', ')}.`);

    const ok = verdict.ok && sealed && cli.code === 0 && leaks.length === 0 && found.length === 0 && injected && stillErased;
    console.log(`\n${clock()}  ${ok ? 'Done: every promise of the day held.' : 'Done, but something above did not hold.'} The demo's tenants acme-${data.suffix} and rival-${data.suffix} stay (its sandbox removed); nothing else was changed.`);
    return ok ? 0 : 1;
  } finally {
    await day.removeSandbox().catch(() => undefined);
    await day.stopStandIns();
  }
}
