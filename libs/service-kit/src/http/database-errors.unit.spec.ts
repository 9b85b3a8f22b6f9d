import type { ArgumentsHost } from '@nestjs/common';
import { DatabaseError } from 'pg';
import { QueryFailedError, QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { createLogger } from '@palisade/observability';
import { databaseErrorToCoded } from './database-errors';
import { HttpErrorFilter } from './error.filter';

const QUERY = 'INSERT INTO "palisade"."users" (tenant_id, username, email) VALUES ($1, $2, $3)';
const PARAMETERS = ['acme', 'alice.secretname', 'alice@private.example'];

/** A failed query as node-postgres and TypeORM raise it. */
function failed(code: string, fields: Partial<DatabaseError> = {}): QueryFailedError {
  const pg = Object.assign(new DatabaseError(fields.message ?? `failure ${code}`, 100, 'error'), { severity: 'ERROR', code, ...fields });
  return new QueryFailedError(QUERY, PARAMETERS, pg);
}

const uniqueViolation = () =>
  failed('23505', {
    message: 'duplicate key value violates unique constraint "users_tenant_username_key"',
    constraint: 'users_tenant_username_key',
    table: 'users',
    schema: 'palisade',
    detail: 'Key (tenant_id, username)=(acme, alice.secretname) already exists.',
  });

/** Run the filter with a real logger; returns the HTTP reply and every log line. */
function throughFilter(exception: unknown) {
  const lines: string[] = [];
  const logger = createLogger({ service: 'auth', destination: { write: (line: string) => void lines.push(line) } });
  const sent: { status?: number; body?: { error: { code: string; message: string; details?: unknown } } } = {};
  const res = {
    headersSent: false,
    getHeader: () => 'req-1',
    status(code: number) {
      sent.status = code;
      return this;
    },
    json(body: typeof sent.body) {
      sent.body = body;
    },
  };
  const host = { switchToHttp: () => ({ getRequest: () => ({ method: 'POST', route: { path: '/v1/users' } }), getResponse: () => res }) } as unknown as ArgumentsHost;
  new HttpErrorFilter(logger).catch(exception, host);
  return { ...sent, log: lines.join('') };
}

describe('database errors at the edge', () => {
  it('maps a unique violation a service did not translate to 409, naming the field and none of the values', () => {
    const { status, body } = throughFilter(uniqueViolation());
    expect(status).toBe(409);
    expect(body!.error).toEqual({ code: 'conflict', message: 'username: already exists', details: { field: 'username' }, requestId: 'req-1' });
    expect(JSON.stringify(body)).not.toContain('alice');
  });

  it('names the constraint when the key columns are unknown', () => {
    expect(databaseErrorToCoded(failed('23505', { constraint: 'keys_pkey' }))).toMatchObject({ code: 'conflict', details: { constraint: 'keys_pkey' } });
  });

  it('maps a lost or refused connection to 503, and leaves other database errors internal', () => {
    expect(databaseErrorToCoded(failed('57P01', { message: 'terminating connection due to administrator command' }))).toMatchObject({ code: 'unavailable' });
    expect(databaseErrorToCoded(failed('08006'))).toMatchObject({ code: 'unavailable' });
    expect(databaseErrorToCoded(new Error('Connection terminated unexpectedly'))).toMatchObject({ code: 'unavailable' });
    // the commit of a transaction whose connection was terminated under it (a failover): unknown outcome, retry
    expect(databaseErrorToCoded(new QueryRunnerAlreadyReleasedError())).toMatchObject({ code: 'unavailable' });
    expect(databaseErrorToCoded(new QueryRunnerProviderAlreadyReleasedError())).toMatchObject({ code: 'unavailable' });
    expect(databaseErrorToCoded(failed('22P02'))).toBeUndefined();
    expect(databaseErrorToCoded(new Error('something else'))).toBeUndefined();
  });

  it('logs a failed query without its parameters, query text, row values or message', () => {
    const invalid = failed('22P02', { message: 'invalid input syntax for type uuid: "alice.secretname"', where: 'unnamed portal parameter $2 = \'alice.secretname\'', routine: 'string_to_uuid' });
    const { status, log } = throughFilter(invalid);
    expect(status).toBe(500);
    const entry = JSON.parse(log);
    expect(entry).toMatchObject({ level: 'error', msg: 'request failed', err: { type: 'QueryFailedError', code: '22P02', routine: 'string_to_uuid', message: 'database error 22P02' } });
    for (const secret of ['alice', 'private.example', 'INSERT INTO', '$1']) expect(log).not.toContain(secret);
    // Logged as 503, a lost connection says no more.
    const lost = throughFilter(failed('57P01', { message: 'terminating connection due to administrator command', detail: 'Key (email)=(alice@private.example)' }));
    expect(lost.status).toBe(503);
    expect(lost.log).not.toContain('alice');
  });
});
