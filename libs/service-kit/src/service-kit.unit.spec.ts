import { BadRequestException, NotFoundException, type ArgumentsHost } from '@nestjs/common';
import { ConfigError } from '@palisade/config';
import { PalisadeError } from '@palisade/contracts';
import { trace } from '@opentelemetry/api';
import { createMetrics, type Logger } from '@palisade/observability';
import type { ServiceIdentity } from '@palisade/pki';
import { loadServiceConfig } from './config';
import { NatsPersonalSealer, TransportPersonalSealer } from '@palisade/nats';
import { Platform } from './platform';
import { bodyParserErrors, HttpErrorFilter, httpStatusOf } from './http/error.filter';

function respond(exception: unknown) {
  const logged: unknown[] = [];
  const logger = { error: (o: unknown) => logged.push(o) } as unknown as Logger;
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    headersSent: false,
    getHeader: () => 'req-1',
    status(code: number) {
      sent.status = code;
      return this;
    },
    json(body: unknown) {
      sent.body = body;
    },
  };
  const host = { switchToHttp: () => ({ getRequest: () => ({ method: 'GET' }), getResponse: () => res }) } as unknown as ArgumentsHost;
  new HttpErrorFilter(logger).catch(exception, host);
  return { ...sent, logged };
}

describe('HttpErrorFilter', () => {
  it.each([
    ['validation', 400],
    ['unauthenticated', 401],
    ['forbidden', 403],
    ['not_found', 404],
    ['conflict', 409],
    ['payload_too_large', 413],
    ['rate_limited', 429],
    ['unavailable', 503],
  ] as const)('maps %s to %i with its message and the request id', (code, status) => {
    const { status: sentStatus, body } = respond(new PalisadeError(code, 'why it failed', { field: 'x' }));
    expect(sentStatus).toBe(status);
    expect(httpStatusOf(code)).toBe(status);
    expect(body).toEqual({ error: { code, message: 'why it failed', details: { field: 'x' }, requestId: 'req-1' } });
  });

  it('shapes Nest HTTP exceptions the same way', () => {
    expect(respond(new NotFoundException('Cannot GET /x'))).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(respond(new BadRequestException(['a must be a string', 'b is required']))).toMatchObject({
      status: 400,
      body: { error: { code: 'validation', message: 'a must be a string; b is required' } },
    });
  });

  it('hides the message of an unexpected error, and logs it', () => {
    const { status, body, logged } = respond(new Error('password=hunter2 leaked in a driver message'));
    expect(status).toBe(500);
    expect(body).toEqual({ error: { code: 'internal', message: 'internal error', requestId: 'req-1' } });
    expect(logged).toHaveLength(1);
  });
});

describe('bodyParserErrors', () => {
  const translate = (error: unknown) => {
    let passed: unknown;
    bodyParserErrors(error, {}, {}, (e) => (passed = e));
    return passed;
  };
  it('turns parser failures into coded errors with plain messages', () => {
    expect(translate(Object.assign(new SyntaxError('Unexpected end'), { type: 'entity.parse.failed', status: 400 }))).toMatchObject({
      code: 'validation',
      message: 'request body is not valid JSON',
    });
    expect(translate({ type: 'entity.too.large', status: 413 })).toMatchObject({ code: 'payload_too_large' });
    const other = new Error('something else');
    expect(translate(other)).toBe(other);
  });
});

describe('loadServiceConfig', () => {
  const base = { NATS_URL: 'tls://127.0.0.1:4223', PALISADE_PKI_DIR: '/tmp/pki' };

  it('defaults the port, database and roles from the service name', () => {
    const config = loadServiceConfig('sandbox-orchestrator', base);
    expect(config).toMatchObject({
      HTTP_PORT: 7104,
      PGDATABASE: 'palisade_sandbox_orchestrator',
      PGUSER: 'palisade_sandbox_orchestrator',
      PG_MIGRATION_USER: 'palisade_sandbox_orchestrator_owner',
      TLS_MODE: 'dev-ca',
    });
  });

  it('names what is missing for the chosen TLS mode', () => {
    expect(() => loadServiceConfig('auth', { NATS_URL: base.NATS_URL })).toThrow(/PALISADE_PKI_DIR: required when TLS_MODE=dev-ca/);
    try {
      loadServiceConfig('auth', { NATS_URL: base.NATS_URL, TLS_MODE: 'files', TLS_CERT_FILE: '/c' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        'TLS_KEY_FILE: required when TLS_MODE=files (unset)',
        'TLS_CA_FILE: required when TLS_MODE=files (unset)',
      ]);
    }
  });

  it('refuses a plaintext NATS URL and a bad schema name', () => {
    expect(() => loadServiceConfig('auth', { ...base, NATS_URL: 'nats://127.0.0.1:4222', PG_SCHEMA: 'Robert"); DROP' })).toThrow(
      /NATS_URL: must be a URL with scheme tls[\s\S]*PG_SCHEMA: must be a lowercase SQL identifier/,
    );
  });
});

describe('Platform.answerRequests', () => {
  const platform = () =>
    new Platform({
      service: 'billing',
      version: '0.0.0',
      config: loadServiceConfig('billing', { NATS_URL: 'tls://127.0.0.1:4223', PALISADE_PKI_DIR: '/tmp/pki' }),
      logger: { info: () => undefined } as unknown as Logger,
      metrics: createMetrics('billing'),
      tracer: trace.getTracer('test'),
      identity: {} as ServiceIdentity,
      migrations: [],
      readiness: {},
    });

  it('answers only the service’s own methods, palisade.rpc.<service>.<method>', () => {
    const p = platform();
    expect(() => p.answerRequests({ 'palisade.rpc.billing.quote': () => 1 })).not.toThrow();
    for (const subject of ['palisade.rpc.credential.service-secret-read', 'palisade.rpc.billing.', 'palisade.rpc.billing.a.b', 'palisade.rpc.billing.>']) {
      expect(() => p.answerRequests({ [subject]: () => 1 })).toThrow(`billing answers only palisade.rpc.billing.<method>, not ${subject}`);
    }
  });
});

describe('Platform.personalSealer', () => {
  const platform = (env: Record<string, string> = {}) =>
    new Platform({
      service: 'llm-router',
      version: '0.0.0',
      config: loadServiceConfig('llm-router', { NATS_URL: 'tls://127.0.0.1:4223', PALISADE_PKI_DIR: '/tmp/pki', ...env }),
      logger: { info: () => undefined, warn: () => undefined } as unknown as Logger,
      metrics: createMetrics('llm-router'),
      tracer: trace.getTracer('test'),
      identity: {} as ServiceIdentity,
      migrations: [],
      readiness: {},
    });

  it('seals locally to the audit transport key by default, through audit over NATS with PERSONAL_SEALING=rpc, and refuses other values', () => {
    expect(platform().personalSealer).toBeInstanceOf(TransportPersonalSealer);
    expect(platform({ PERSONAL_SEALING: 'rpc' }).personalSealer).toBeInstanceOf(NatsPersonalSealer);
    expect(() => platform({ PERSONAL_SEALING: 'none' })).toThrow(/PERSONAL_SEALING/);
  });
});
