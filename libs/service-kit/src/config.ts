import { z } from 'zod';
import { ConfigError, env, loadConfig } from '@palisade/config';
import { SERVICES, serviceDatabase, type ServiceName } from '@palisade/contracts';

/** Exit status for bad configuration (sysexits EX_CONFIG): supervisors (and a cluster's primary) should not restart-loop on it. */
export const EXIT_CONFIG = 78;

/** The environment every service reads (README, "Configuration"). */
export function serviceConfigShape(service: ServiceName) {
  const db = serviceDatabase(service);
  return {
    HTTP_HOST: z.string().min(1).default('127.0.0.1'),
    HTTP_PORT: env.port(SERVICES[service].port),
    /** Largest request body accepted, in bytes. */
    HTTP_BODY_LIMIT: env.int(1024 * 1024, 1024, 64 * 1024 * 1024),
    LOG_LEVEL: env.logLevel(),
    OTEL_TRACES_EXPORTER: z.enum(['none', 'console', 'memory']).default('none'),
    NATS_URL: env.url(['tls']),
    /** dev-ca: the service issues its own certificate from the development CA; files: SPIRE/cert-manager files. */
    TLS_MODE: z.enum(['dev-ca', 'files']).default('dev-ca'),
    PALISADE_PKI_DIR: z.string().optional(),
    TLS_CERT_FILE: z.string().optional(),
    TLS_KEY_FILE: z.string().optional(),
    TLS_CA_FILE: z.string().optional(),
    CERT_LIFETIME_HOURS: z.coerce.number().positive().max(24 * 30).default(24),
    PGHOST: z.string().min(1).default('127.0.0.1'),
    PGPORT: env.port(5432),
    PGDATABASE: z.string().min(1).default(db),
    PGUSER: z.string().min(1).default(db),
    PGPASSWORD: z.string().optional(),
    PG_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a lowercase SQL identifier').default('palisade'),
    PG_MIGRATION_USER: z.string().min(1).default(`${db}_owner`),
    PG_MIGRATION_PASSWORD: z.string().optional(),
    PG_POOL_SIZE: env.int(5, 1, 100),
    PG_SSL_CA_FILE: z.string().optional(),
    /** Where the auth service publishes its token signing keys (JWKS over HTTPS, our CA). */
    AUTH_JWKS_URL: env.url(['https']).default('https://127.0.0.1:7101/.well-known/jwks.json'),
    /** A JWKS as JSON instead of the URL (air-gapped single hosts, tests); wins over AUTH_JWKS_URL. */
    AUTH_JWKS: z
      .string()
      .optional()
      .refine((v) => {
        if (v === undefined) return true;
        try {
          return Array.isArray(JSON.parse(v).keys);
        } catch {
          return false;
        }
      }, 'must be a JWKS: {"keys":[…]}'),
    /** How long a dependency may stay unreachable before readiness says so (it is retried regardless). */
    DEPENDENCY_RETRY_MAX_MS: env.int(10000, 100, 600000),
    /** How far the outbox relay or an event tail may fall behind the event store before the service is not ready. */
    EVENT_LAG_MAX_MS: env.int(5000, 100, 600000),
    /** How long the audit service may take to seal the personal data of an append, or to give its transport key (past it the write fails: 503). */
    PERSONAL_SEALING_TIMEOUT_MS: env.int(3000, 100, 60000),
    /**
     * How `personal` is sealed before events are stored: `local` (default) to the audit
     * service's transport key, in process (audit over NATS only while no key can be had);
     * `rpc`: the audit service seals every append over NATS (a round trip each).
     */
    PERSONAL_SEALING: z.enum(['local', 'rpc']).default('local'),
  };
}

export type ServiceConfig = z.infer<z.ZodObject<ReturnType<typeof serviceConfigShape>>>;

export function loadServiceConfig(service: ServiceName, source: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const config = loadConfig(serviceConfigShape(service), source);
  const problems: string[] = [];
  if (config.TLS_MODE === 'dev-ca' && !config.PALISADE_PKI_DIR) problems.push('PALISADE_PKI_DIR: required when TLS_MODE=dev-ca (unset)');
  if (config.TLS_MODE === 'files') {
    for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE'] as const) {
      if (!config[name]) problems.push(`${name}: required when TLS_MODE=files (unset)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
