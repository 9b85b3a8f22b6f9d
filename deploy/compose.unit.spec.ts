import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SERVICE_NAMES, SERVICES, serviceDatabase } from '@palisade/contracts';

// docker-compose.yml and the Dockerfiles, checked statically (no Docker engine needed).
const REPO = join(__dirname, '..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renderServiceDockerfile } = require('./docker/render-dockerfiles.js') as {
  renderServiceDockerfile(template: string, service: string, port: number): string;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { NODE_FLAGS } = require('../scripts/platform-runner.js') as { NODE_FLAGS: Record<string, string[] | undefined> };

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string | string[];
  user?: string;
  ports?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const services = compose.services;

function properties(text: string): Record<string, string> {
  const joined = text.replace(/\\\n\s*/g, '');
  return Object.fromEntries(
    joined
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
  );
}

const nonRoot = (user: string | undefined) => {
  const uid = user?.split(':')[0];
  return uid !== undefined && uid !== '' && uid !== '0' && uid !== 'root';
};

describe('docker-compose.yml: the seven services', () => {
  it.each(SERVICE_NAMES)('%s: built from its Dockerfile, on its port, healthy only when ready', (name) => {
    const service = services[name];
    expect(service).toBeDefined();
    const port = SERVICES[name].port;
    expect(service.build?.dockerfile).toBe(`services/${name}/Dockerfile`);
    expect(service.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    expect(service.environment?.HTTP_PORT).toBe(String(port));
    expect(service.healthcheck?.test).toEqual(['CMD', 'node', '/app/healthcheck.js']);
    expect(read('deploy/docker/healthcheck.js')).toContain("path: '/health/ready'");
  });

  it.each(SERVICE_NAMES)('%s: read-only root, tmpfs /tmp, its own non-root user, no capabilities', (name) => {
    const service = services[name] as ComposeService & { cap_drop?: string[] };
    expect(service.read_only).toBe(true);
    expect(service.tmpfs).toContain('/tmp');
    expect(nonRoot(service.user)).toBe(true);
    expect(service.cap_drop).toEqual(['ALL']);
    const uids = SERVICE_NAMES.map((n) => services[n].user);
    expect(new Set(uids).size).toBe(SERVICE_NAMES.length);
  });

  it.each(SERVICE_NAMES)('%s: starts after its certificates, a healthy PostgreSQL and NATS (and Kafka for audit)', (name) => {
    const deps = services[name].depends_on ?? {};
    expect(deps.pki).toEqual({ condition: 'service_completed_successfully' });
    expect(deps.postgres).toEqual({ condition: 'service_healthy' });
    expect(deps.nats).toEqual({ condition: 'service_healthy' });
    if (name === 'audit') {
      expect(deps.kafka).toEqual({ condition: 'service_healthy' });
      expect(deps['kafka-init']).toEqual({ condition: 'service_completed_successfully' });
      expect(services[name].environment?.KAFKA_BROKERS).toBe('kafka:9093');
    } else {
      expect(deps.kafka).toBeUndefined();
      expect(services[name].environment?.KAFKA_BROKERS).toBeUndefined();
    }
  });

  it.each(SERVICE_NAMES)('%s: TLS to NATS and PostgreSQL with its own certificate, its own database roles, no password in the file', (name) => {
    const env = services[name].environment ?? {};
    expect(env.NATS_URL).toMatch(/^tls:\/\//);
    expect(env.TLS_MODE).toBe('files');
    expect(env.TLS_CERT_FILE).toBe(`/pki/${name}/cert.pem`);
    expect(env.PG_SSL_CA_FILE).toBe(`/pki/${name}/ca.pem`);
    expect(env.PGDATABASE).toBe(serviceDatabase(name));
    expect(env.PGUSER).toBe(serviceDatabase(name));
    expect(env.PG_MIGRATION_USER).toBe(`${serviceDatabase(name)}_owner`);
    expect(env.PGPASSWORD).toBe(`\${PG_PASSWORD_${serviceDatabase(name).toUpperCase()}:?run deploy/docker/compose-env.sh}`);
    expect(env.PG_MIGRATION_PASSWORD).toMatch(/^\$\{PG_PASSWORD_[A-Z_]+_OWNER:\?/);
  });
});

describe('docker-compose.yml: infrastructure', () => {
  it('has the set-up jobs, PostgreSQL, NATS and Kafka, each healthy-checked', () => {
    for (const name of ['pki', 'nats-init', 'kafka-init', 'postgres', 'nats', 'kafka']) expect(services[name]).toBeDefined();
    for (const name of ['postgres', 'nats', 'kafka']) expect(services[name].healthcheck?.test.length).toBeGreaterThan(1);
  });

  it('keeps the CA key in a volume only the pki jobs mount', () => {
    const mounting = Object.entries(services)
      .filter(([, s]) => (s.volumes ?? []).some((v) => v.startsWith('pki-ca:')))
      .map(([name]) => name)
      .sort();
    expect(mounting).toEqual(['nats-init', 'pki']);
  });

  it.each(SERVICE_NAMES)('%s: mounts no CA key and no other identity, only its own certificate volume, written by the pki job', (name) => {
    const volumes = services[name].volumes ?? [];
    expect(volumes.filter((v) => v.startsWith('pki'))).toEqual([`pki-${name}:/pki/${name}:ro`]);
    expect(volumes.some((v) => v.startsWith('pki-ca:') || v.startsWith('pki-certs:'))).toBe(false);
    expect(services.pki.volumes).toContain(`pki-${name}:/pki/certs/${name}`);
    expect(compose.volumes).toHaveProperty(`pki-${name}`);
    expect(services[name].environment?.TLS_MODE).toBe('files'); // never dev-ca: no service issues its own identity
  });

  it('creates the databases and roles with the same script as deploy/local/postgres.sh, for every service', () => {
    expect(services.postgres.volumes).toContain('./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-palisade.sh:ro');
    expect(read('deploy/local/postgres.sh')).toContain('deploy/postgres/init-databases.sh');
    const listed = /PALISADE_DATABASES=\(([^)]*)\)/.exec(read('deploy/postgres/init-databases.sh'))?.[1].trim().split(/\s+/);
    expect(listed).toEqual([...SERVICE_NAMES.map((n) => serviceDatabase(n).replace(/^palisade_/, '')), 'test']);
  });

  it('runs PostgreSQL with TLS 1.3 and accepts network connections only over TLS', () => {
    const command = (services.postgres.command as string[]).join(' ');
    expect(command).toContain('ssl=on');
    expect(command).toContain('ssl_min_protocol_version=TLSv1.3');
    const hba = read('deploy/docker/postgres/pg_hba.conf')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect(hba.filter((l) => !l.startsWith('local')).every((l) => l.startsWith('hostssl'))).toBe(true);
  });

  it('runs NATS with TLS, client certificates mapped to users, and JetStream', () => {
    expect(services.nats.command).toEqual(['-c', '/pki/nats/nats.conf']);
    const init = read('deploy/docker/pki-init.sh');
    expect(init).toMatch(/tls \{[^}]*verify_and_map: true/);
    expect(init).toMatch(/jetstream \{/);
    expect(init).not.toMatch(/^\s*(no_auth_user|allow_non_tls)/m);
  });

  it('runs Kafka (the version of deploy/local/kafka) with SSL listeners only, client auth, TLS 1.3 and deny by default', () => {
    const version = /<kafka.version>([^<]+)<\/kafka.version>/.exec(read('deploy/local/kafka/pom.xml'))?.[1];
    expect(version).toMatch(/^3\.9\./);
    expect(services.kafka.image).toBe(`apache/kafka:${version}`);
    expect(services['kafka-init'].image).toBe(`apache/kafka:${version}`);
    const props = properties(read('deploy/docker/kafka/server.properties'));
    expect(props['ssl.client.auth']).toBe('required');
    expect(props['ssl.enabled.protocols']).toBe('TLSv1.3');
    expect(props['listener.security.protocol.map']).toBe('SSL:SSL,CONTROLLER:SSL');
    expect(props.listeners).not.toMatch(/PLAINTEXT|SASL/);
    expect(props['authorizer.class.name']).toBe('org.apache.kafka.metadata.authorizer.StandardAuthorizer');
    expect(props['allow.everyone.if.no.acl.found']).toBe('false');
    expect(props['delete.topic.enable']).toBe('false');
    expect(props['ssl.principal.mapping.rules']).toContain('RULE:^O=Palisade,OU=service,CN=([a-z][a-z0-9-]*)$/$1/');
    expect(services['kafka-init'].command).toContain('/palisade/acls.sh');
  });

  it('publishes no infrastructure port and every service port on loopback only', () => {
    for (const name of ['postgres', 'nats', 'kafka']) expect(services[name].ports).toBeUndefined();
    for (const name of SERVICE_NAMES) for (const p of services[name].ports ?? []) expect(p.startsWith('127.0.0.1:')).toBe(true);
  });
});

describe('services/<name>/Dockerfile', () => {
  const template = read('deploy/docker/service.Dockerfile');

  it.each(SERVICE_NAMES)('%s: exists and is the shared template for this service and port', (name) => {
    const file = `services/${name}/Dockerfile`;
    expect(existsSync(join(REPO, file))).toBe(true);
    expect(read(file)).toBe(renderServiceDockerfile(template, name, SERVICES[name].port));
  });

  it.each(SERVICE_NAMES)('%s: runs main.js with the Node flags `npm start` gives it (scripts/platform-runner.js)', (name) => {
    const cmd = read(`services/${name}/Dockerfile`).match(/^CMD (\["node".*)$/m)?.[1];
    expect(JSON.parse(cmd!)).toEqual(['node', ...(NODE_FLAGS[name] ?? []), '/app/main.js']);
  });

  it.each(SERVICE_NAMES)('%s: multi-stage on Node 24, runs as a non-root user with a health check', (name) => {
    const text = read(`services/${name}/Dockerfile`);
    expect(text).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    const stages = text.match(/^FROM .*/gm) ?? [];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[stages.length - 1]).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime$/);
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    const users = runtime.match(/^USER (.*)$/gm) ?? [];
    expect(users.length).toBeGreaterThan(0);
    expect(nonRoot(users[users.length - 1].slice('USER '.length))).toBe(true);
    expect(runtime).toMatch(/^HEALTHCHECK .*healthcheck\.js/m);
    expect(text).toContain(`ARG SERVICE=${name}`);
    expect(text).toContain(`ARG PORT=${SERVICES[name].port}`);
  });

  it('are built without local state or keys in the context', () => {
    const ignore = read('.dockerignore');
    for (const entry of ['**/node_modules', '.palisade', '.git', '**/*.pem', '**/*.key']) expect(ignore).toContain(entry);
  });
});
