import { readFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_AUDIT_TOPIC, DEFAULT_CHECKPOINT_TOPIC, keysOf, verifyNdjsonFile, type Jwks, type VerificationResult } from '@palisade/audit-log';
import { kafkaClient } from '@palisade/kafka';
import { ServiceIdentity } from '@palisade/pki';
import { verifyTopic, verifyTopicInParallel } from '../verify/verify-topic';

const USAGE = `usage: palisade audit verify (--file <export.ndjson> | --brokers <host:port> [--topic <t>] [--checkpoint-topic <t>])
                              (--keys <jwks.json> | --keys-url <https://…/v1/audit/keys>)
                              [--partition <n>]… [--cert <pem> --key <pem>] [--ca <pem>]
                              [--from-start | --allow-later-start] [--threads <n>]

Verifies the audit log against audit-log-format.md: every record's hash, the links and
sequence of each partition's chain, that no event appears twice, every checkpoint's
Ed25519 signature and that no checkpoint seals a record beyond the end (a cut tail).
Exit status: 0 verified, 1 a failure (the first one is printed with partition, seq and
reason), 2 usage or I/O error.

  --file               an NDJSON export (records and checkpoints, one per line)
  --brokers            verify the live topic instead (TLS with --cert/--key/--ca, default the
                       dev admin certificate under $PALISADE_HOME/kafka/tls/admin)
  --keys, --keys-url   the published checkpoint keys (JWKS)
  --partition          live topic: only these partitions (repeatable)
  --from-start         live topic: every chain must start at seq 1 (by default the first record
                       still held anchors the chain: retention deletes the oldest records)
  --allow-later-start  file: accept chains whose first record is after seq 1 (a range export)
  --threads            live topic: verify on n worker threads (partitions spread over them,
                       this thread only reads); default 1`;

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

function fetchJson(url: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: new Agent({ ca, minVersion: 'TLSv1.3' }), timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url} answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error(`${url} did not answer JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

export function report(result: VerificationResult, io: Io): number {
  const partitions = Object.keys(result.partitions).length;
  if (result.ok) {
    io.out(`OK: verified ${result.records} record(s) in ${partitions} partition(s) and ${result.checkpoints} checkpoint(s)`);
    return 0;
  }
  const f = result.failure!;
  io.out(`FAILED at partition ${f.partition ?? '?'} seq ${f.seq ?? '?'}: ${f.reason.replace(/_/g, ' ')} (${f.message})`);
  io.out(`verified before the failure: ${result.records} record(s), ${result.checkpoints} checkpoint(s)`);
  return 1;
}

export async function verifyCommand(argv: string[], io: Io): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        file: { type: 'string' },
        brokers: { type: 'string' },
        topic: { type: 'string', default: DEFAULT_AUDIT_TOPIC },
        'checkpoint-topic': { type: 'string', default: DEFAULT_CHECKPOINT_TOPIC },
        keys: { type: 'string' },
        'keys-url': { type: 'string' },
        partition: { type: 'string', multiple: true },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        'from-start': { type: 'boolean', default: false },
        'allow-later-start': { type: 'boolean', default: false },
        threads: { type: 'string', default: '1' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(USAGE);
    return 0;
  }
  if (!args.file === !args.brokers || !args.keys === !args['keys-url']) {
    io.err(USAGE);
    return 2;
  }
  const partitions = args.partition?.map(Number);
  if (partitions?.some((p) => !Number.isInteger(p) || p < 0)) {
    io.err('--partition must be a partition number');
    return 2;
  }
  const threads = Number(args.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    io.err('--threads must be a whole number from 1 to 64');
    return 2;
  }
  const home = io.env.PALISADE_HOME ?? join(process.cwd(), '.palisade');
  const admin = join(home, 'kafka', 'tls', 'admin');
  const caFile = args.ca ?? join(admin, 'ca.pem');
  try {
    const jwks = (args.keys ? JSON.parse(readFileSync(args.keys, 'utf8')) : await fetchJson(args['keys-url']!, readFileSync(caFile, 'utf8'))) as Jwks;
    const keys = keysOf(jwks);
    if (args.file) {
      return report(await verifyNdjsonFile(args.file, { keys, allowLaterStart: args['allow-later-start'] }), io);
    }
    const identity = await ServiceIdentity.fromFiles({ certFile: args.cert ?? join(admin, 'cert.pem'), keyFile: args.key ?? join(admin, 'key.pem'), caFile });
    const kafka = kafkaClient({ brokers: args.brokers!, identity, clientId: 'palisade-audit-verify', logLevel: 'error' });
    const kafkaAdmin = kafka.admin();
    try {
      await kafkaAdmin.connect();
      const common = { kafka, admin: kafkaAdmin, topic: args.topic!, checkpointTopic: args['checkpoint-topic']!, partitions, groupPrefix: 'palisade-audit-verify', allowLaterStart: !args['from-start'] };
      const result = threads > 1 ? await verifyTopicInParallel({ ...common, jwks, threads }) : await verifyTopic({ ...common, keys });
      return report(result, io);
    } finally {
      await kafkaAdmin.disconnect().catch(() => undefined);
      identity.stop();
    }
  } catch (error) {
    io.err(`palisade audit verify: ${(error as Error).message}`);
    return 2;
  }
}

/** `palisade <area> <command> …` */
export async function run(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'audit' && argv[1] === 'verify') return verifyCommand(argv.slice(2), io);
  io.err(`unknown command: palisade ${argv.slice(0, 2).join(' ')}\n${USAGE}`);
  return 2;
}

if (require.main === module) {
  run(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  }).then((code) => process.exit(code));
}
