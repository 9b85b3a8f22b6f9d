import { ArgumentsHost, Catch, HttpException, type ExceptionFilter } from '@nestjs/common';
import { PalisadeError, type ErrorBody, type ErrorCode } from '@palisade/contracts';
import type { Logger } from '@palisade/observability';
import type { Request, Response } from 'express';
import { databaseErrorToCoded } from './database-errors';

const STATUS: Record<ErrorCode, number> = {
  validation: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  illegal_state: 409,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

function codeOfStatus(status: number): ErrorCode {
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 413) return 'payload_too_large';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'unavailable';
  if (status >= 400 && status < 500) return 'validation';
  return 'internal';
}

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Errors raised by Express's body parser before Nest sees the request. */
interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
}

/**
 * Express error middleware placed right after the body parser: turns its errors into
 * coded errors with a clear message (Nest would otherwise echo the parser's text).
 */
export function bodyParserErrors(error: unknown, _req: unknown, _res: unknown, next: (error: unknown) => void): void {
  const parser = error as BodyParserError;
  if (parser?.type === 'entity.too.large') return next(new PalisadeError('payload_too_large', 'request body is too large'));
  if (parser?.type === 'entity.parse.failed') return next(new PalisadeError('validation', 'request body is not valid JSON'));
  if (parser?.type === 'encoding.unsupported' || parser?.type === 'charset.unsupported') {
    return next(new PalisadeError('validation', 'request body encoding is not supported'));
  }
  if (parser?.expose && typeof parser.status === 'number' && parser.status < 500) {
    return next(new PalisadeError(codeOfStatus(parser.status), 'malformed request body'));
  }
  next(error);
}

/**
 * The one place HTTP errors are shaped: `{ error: { code, message, details?, requestId } }`.
 * Domain errors keep their message; database errors a service did not translate map
 * to 409 (unique violation, naming the field) or 503 (connection lost); anything
 * unexpected becomes a 500 that says only "internal error" and is logged with the
 * request id (a database error without its query, parameters or row values: the
 * logger's redaction).
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const requestId = String(response.getHeader('x-request-id') ?? '');
    const { status, body } = this.shape(exception, requestId);
    if (status >= 500) {
      this.logger.error({ err: exception, requestId, method: request.method, route: request.route?.path }, 'request failed');
    }
    if (!response.headersSent) response.status(status).json(body);
  }

  private shape(exception: unknown, requestId: string): { status: number; body: ErrorBody } {
    if (exception instanceof PalisadeError) {
      return { status: httpStatusOf(exception.code), body: exception.toBody(requestId) };
    }
    // Database errors a service did not translate: a unique violation is a conflict, a lost connection a 503.
    const database = databaseErrorToCoded(exception);
    if (database) return { status: httpStatusOf(database.code), body: database.toBody(requestId) };
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      const message =
        typeof payload === 'object' && payload !== null && 'message' in payload
          ? [payload.message].flat().join('; ')
          : exception.message;
      return { status, body: new PalisadeError(codeOfStatus(status), status >= 500 ? 'internal error' : message).toBody(requestId) };
    }
    return { status: 500, body: new PalisadeError('internal', 'internal error').toBody(requestId) };
  }
}
