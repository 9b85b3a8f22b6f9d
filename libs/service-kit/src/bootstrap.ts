import 'reflect-metadata';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AccessTokenVerifier, audienceOf, signingKeysOf } from '@palisade/auth-verifier';
import { ConfigError } from '@palisade/config';
import type { ServiceName } from '@palisade/contracts';
import { createLogger, createMetrics, initTracing, type Logger } from '@palisade/observability';
import { ServiceIdentity } from '@palisade/pki';
import { migratedByPrimary, runPrimary, workerCount, type WorkersOption } from './cluster';
import { siblings } from './siblings';
import { METRICS_TOPIC } from './cluster-metrics';
import { READINESS_TOPIC } from './health';
import { EXIT_CONFIG, loadServiceConfig, type ServiceConfig } from './config';
import { NatsApiKeyResolver } from './http/api-keys';
import { bodyParserErrors, HttpErrorFilter } from './http/error.filter';
import { readinessGate, requestContext } from './http/request-context';
import { httpTelemetry } from './http/telemetry';
import { NestPinoLogger } from './nest-logger';
import { Platform, retrying, runMigrations, type MigrationFactory, type ReadinessCheck } from './platform';
import { PlatformModule } from './platform.module';

export interface ServiceDefinition {
  name: ServiceName;
  version: string;
  /** One line for the OpenAPI document. */
  description: string;
  /** The service's own Nest module (controllers, providers; `*.rpc.ts` providers answer NATS requests with serveRpc). */
  module: Type<unknown>;
  migrations?: readonly MigrationFactory[];
  readiness?: Readonly<Record<string, ReadinessCheck>>;
  /** Callers may present one of auth's API keys directly (bearer or `x-api-key`), verified by auth over NATS on every request. */
  apiKeys?: boolean;
  /** Remember verified access tokens briefly (see AccessTokenVerifierOptions.cache: revocation still checked on every request); absent: each verified in full. */
  verifiedTokenCache?: { ttlMs: number; max: number };
  /**
   * Run as this many worker processes behind the one port (node:cluster, see cluster.ts): the
   * primary migrates once, forks, restarts workers that die and stops them on SIGTERM. Absent
   * or a count of 1: one process, no cluster.
   */
  workers?: WorkersOption;
}

export interface RunningService {
  app: NestExpressApplication;
  platform: Platform;
  config: ServiceConfig;
  /** Resolves once every dependency is connected. */
  connected: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start a Palisade service: validated configuration, its TLS identity, HTTPS (TLS 1.3)
 * with health, metrics and docs served at once (a cluster worker's: once connected), then
 * its dependencies connected in the background with retries, the outbox relay, the
 * service's `afterConnect` hooks (its NATS request handlers, consumers), and the
 * `<service>.lifecycle.started` event.
 */
export async function runService(definition: ServiceDefinition, env: NodeJS.ProcessEnv = process.env, migratedElsewhere?: Promise<void>): Promise<RunningService> {
  const config = loadServiceConfig(definition.name, env);
  const serviceLogger = createLogger({ service: definition.name, level: config.LOG_LEVEL });
  const logger = cluster.isWorker ? serviceLogger.child({ worker: cluster.worker!.id }) : serviceLogger;
  const tracer = initTracing(definition.name, config.OTEL_TRACES_EXPORTER);
  const metrics = createMetrics(definition.name);
  const identity = await startIdentity(definition.name, config, logger);

  const platform = new Platform({
    service: definition.name,
    version: definition.version,
    config,
    logger,
    metrics,
    tracer,
    identity,
    migrations: definition.migrations ?? [],
    ...(migratedElsewhere ? { migratedElsewhere } : {}),
    readiness: definition.readiness ?? {},
  });

  // a probe of /health/ready or a scrape of /metrics through any worker gathers every worker's (platform.module.ts)
  siblings().answer(READINESS_TOPIC, () => platform.readiness());
  siblings().answer(METRICS_TOPIC, () => metrics.getMetricsAsJSON());

  const verifier = new AccessTokenVerifier({
    keys: signingKeys(config, identity),
    audience: audienceOf(definition.name),
    revocations: platform.revocations,
    ...(definition.verifiedTokenCache ? { cache: definition.verifiedTokenCache } : {}),
  });

  const apiKeys = definition.apiKeys ? new NatsApiKeyResolver(() => platform.nats) : undefined;
  @Module({ imports: [PlatformModule.forRoot(platform, verifier, apiKeys), definition.module] })
  class ServiceRootModule {}

  const app = await NestFactory.create<NestExpressApplication>(ServiceRootModule, {
    httpsOptions: { ...identity.tlsOptions(), requestCert: true, rejectUnauthorized: false },
    logger: new NestPinoLogger(logger),
    bodyParser: false,
  });
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(requestContext);
  app.use(httpTelemetry(tracer, metrics));
  app.useBodyParser('json', { limit: config.HTTP_BODY_LIMIT });
  app.use(bodyParserErrors);
  app.use(readinessGate(() => platform.isConnected()));
  app.useGlobalFilters(new HttpErrorFilter(logger));
  // No app.enableShutdownHooks(): main() stops on SIGTERM/SIGINT through stop() (the platform's close hooks,
  // then app.close(), which runs Nest's hooks); Nest's own handler re-raised the signal once Nest had closed,
  // killing the process before the platform finished (events in flight, audit batches, sandbox networks).
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle(`Palisade ${definition.name}`).setDescription(definition.description).setVersion(definition.version).build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });
  const listen = async () => {
    await app.listen(config.HTTP_PORT, config.HTTP_HOST);
    identity.attachTo(app.getHttpServer() as Server);
    logger.info({ port: config.HTTP_PORT, host: config.HTTP_HOST }, 'HTTPS listening (TLS 1.3)');
  };
  // A cluster worker listens only once connected: the primary hands the port's connections to the workers
  // that listen, so a worker still connecting (a replacement, say) takes none rather than answering 503.
  if (migratedElsewhere) await app.init();
  else await listen();

  let stopping: Promise<void> | undefined;
  const connected = platform
    .connect()
    .then(async () => {
      if (!migratedElsewhere || stopping) return;
      // a worker that cannot listen is of no use: the primary replaces it (and gives up if none can)
      await listen().catch((error: Error) => {
        logger.fatal({ err: error.message }, 'cannot listen');
        logger.flush();
        process.exit(1);
      });
    })
    .catch((error: Error) => {
      logger.warn({ err: error.message }, 'stopped connecting');
    });
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('stopping');
      await platform.close();
      await app.close();
      identity.stop();
      logger.flush();
    })());
  return { app, platform, config, connected, stop };
}

/** The auth service's token signing keys: a local JWKS when configured, else its HTTPS endpoint. */
function signingKeys(config: ServiceConfig, identity: ServiceIdentity) {
  return signingKeysOf({ jwks: config.AUTH_JWKS, url: config.AUTH_JWKS_URL, caPem: identity.current().caPem });
}

async function startIdentity(service: ServiceName, config: ServiceConfig, logger: Logger): Promise<ServiceIdentity> {
  return config.TLS_MODE === 'files'
    ? ServiceIdentity.fromFiles({ certFile: config.TLS_CERT_FILE!, keyFile: config.TLS_KEY_FILE!, caFile: config.TLS_CA_FILE!, logger })
    : ServiceIdentity.fromDevCa({
        caDir: config.PALISADE_PKI_DIR!,
        kind: 'service',
        name: service,
        lifetimeMs: config.CERT_LIFETIME_HOURS * 3600 * 1000,
        logger,
      });
}

/**
 * For a service's main.ts: run, and stop cleanly on SIGTERM / SIGINT; with `workers` above 1,
 * as the cluster's primary (migrations, then N workers behind the one port) or one of its workers.
 */
export function main(definition: ServiceDefinition): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) {
    process.stderr.write(`${JSON.stringify({ level: 'fatal', service: definition.name, msg: `Node ${process.versions.node} is too old: run with Node 24 (node_modules/.bin/node)` })}\n`);
    process.exit(EXIT_CONFIG);
  }
  let workers: number;
  try {
    workers = workerCount(definition.workers);
  } catch (error) {
    return startupFailed(definition, error as Error);
  }
  if (workers > 1 && cluster.isPrimary) return runClusterPrimary(definition, workers);
  // listening from the first tick: the primary's word may come before the worker has built its app
  const migrated = cluster.isWorker ? migratedByPrimary() : undefined;
  // a worker answers its siblings' broadcasts from the start (the primary waits for every listening worker's word)
  siblings();
  runService(definition, process.env, migrated).then(
    (running) => {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => void running.stop().then(() => process.exit(0)));
      }
    },
    (error: Error) => startupFailed(definition, error),
  );
}

function startupFailed(definition: ServiceDefinition, error: Error): void {
  const entry =
    error instanceof ConfigError
      ? { level: 'fatal', service: definition.name, msg: error.message, problems: error.problems }
      : { level: 'fatal', service: definition.name, msg: 'start-up failed', err: error.message };
  process.stderr.write(`${JSON.stringify(entry)}\n`);
  process.exit(error instanceof ConfigError ? EXIT_CONFIG : 1);
}

function runClusterPrimary(definition: ServiceDefinition, workers: number): void {
  let config: ServiceConfig;
  try {
    config = loadServiceConfig(definition.name);
  } catch (error) {
    return startupFailed(definition, error as Error);
  }
  const logger = createLogger({ service: definition.name, level: config.LOG_LEVEL }).child({ primary: true });
  runPrimary({
    workers,
    logger,
    // retried like the platform's connection steps: PostgreSQL may come up after the service
    migrate: (stopped) =>
      retrying(() => runMigrations(definition.name, config, logger, definition.migrations ?? []), {
        maxDelayMs: config.DEPENDENCY_RETRY_MAX_MS,
        stopped,
        failed: (reason, retryInMs) => logger.error({ dependency: 'postgres', reason, retryInMs }, 'postgres unavailable for the migrations; retrying'),
      }),
  });
}

/** The version in the package.json next to a service's dist/ or src/ folder. */
export function packageVersion(dir: string): string {
  const { version } = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as { version: string };
  return version;
}
