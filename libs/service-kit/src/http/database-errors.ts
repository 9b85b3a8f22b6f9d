import { PalisadeError } from '@palisade/contracts';

/** The fields of a PostgreSQL error (node-postgres DatabaseError) this module reads. */
interface PgErrorShape {
  code?: unknown;
  severity?: unknown;
  constraint?: unknown;
  detail?: unknown;
}

/** The PostgreSQL error behind `error`: itself, or the driver error TypeORM's QueryFailedError wraps. */
export function pgErrorOf(error: unknown): PgErrorShape | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const candidate = ((error as { driverError?: unknown }).driverError ?? error) as PgErrorShape;
  return typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code) && 'severity' in candidate ? candidate : undefined;
}

const RELEASED_UNDER_TRANSACTION = new Set(['QueryRunnerAlreadyReleasedError', 'QueryRunnerProviderAlreadyReleasedError']);
const CONNECTION_LOST = /Connection terminated|not queryable|timeout exceeded when trying to connect|ECONNREFUSED|ECONNRESET/;

/**
 * The coded error a database failure the service did not translate itself should be
 * at the edge, or undefined when it is a plain internal error. Unique violations
 * (23505) are conflicts naming the field (the columns of the key, never its values);
 * lost connections and an unavailable server are 503. Nothing of the query, its
 * parameters or the row reaches the message.
 */
export function databaseErrorToCoded(error: unknown): PalisadeError | undefined {
  const pg = pgErrorOf(error);
  if (pg) {
    const code = pg.code as string;
    if (code === '23505') {
      const field = keyColumns(pg.detail);
      return field
        ? new PalisadeError('conflict', `${field}: already exists`, { field })
        : new PalisadeError('conflict', 'a record with these values already exists', typeof pg.constraint === 'string' ? { constraint: pg.constraint } : undefined);
    }
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
      return new PalisadeError('unavailable', 'the database is unavailable; try again');
    }
    return undefined;
  }
  // TypeORM's, when a transaction's connection was terminated under it (its next query or commit cannot run)
  if (error instanceof Error && RELEASED_UNDER_TRANSACTION.has(error.name)) return new PalisadeError('unavailable', 'the database is unavailable; try again');
  if (error instanceof Error && CONNECTION_LOST.test(error.message)) return new PalisadeError('unavailable', 'the database is unavailable; try again');
  return undefined;
}

/** `Key (tenant_id, username)=(…) already exists.` → `username` (the tenant is implied). */
function keyColumns(detail: unknown): string | undefined {
  const m = typeof detail === 'string' ? /^Key \(([a-z0-9_, ]+)\)=/.exec(detail) : null;
  if (!m) return undefined;
  const columns = m[1].split(',').map((c) => c.trim()).filter((c) => c && c !== 'tenant_id');
  return columns.length > 0 ? columns.join(', ') : undefined;
}
