/**
 * Transport-neutral, coded errors. The domain throws these; one HTTP filter and one
 * NATS filter per service translate them (status codes live in the edge, not here).
 */
export type ErrorCode =
  | 'validation'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'illegal_state'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; requestId?: string };
}

export class PalisadeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'PalisadeError';
  }

  toBody(requestId?: string): ErrorBody {
    const body: ErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details !== undefined) body.error.details = this.details;
    if (requestId) body.error.requestId = requestId;
    return body;
  }
}

export const validationError = (message: string, details?: unknown) =>
  new PalisadeError('validation', message, details);
export const notFound = (what: string) => new PalisadeError('not_found', `${what} not found`);

/** An append found another version than the one the decision was based on. */
export class ConcurrencyError extends PalisadeError {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(
      'conflict',
      `stream ${streamId} is at version ${actualVersion}, expected ${expectedVersion}`,
      { streamId, expectedVersion, actualVersion },
    );
    this.name = 'ConcurrencyError';
  }
}

export function isPalisadeError(value: unknown): value is PalisadeError {
  return value instanceof PalisadeError;
}
