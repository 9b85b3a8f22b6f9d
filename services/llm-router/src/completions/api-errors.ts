import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { PalisadeError, type ErrorCode } from '@palisade/contracts';
import { httpStatusOf, PLATFORM, type Platform } from '@palisade/service-kit';
import type { Request, Response } from 'express';

/** Any exception as a coded error (HTTP exceptions by status; anything unexpected is internal). */
function codedOf(exception: unknown): PalisadeError {
  if (exception instanceof PalisadeError) return exception;
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const code: ErrorCode = status === 401 ? 'unauthenticated' : status === 403 ? 'forbidden' : status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : status === 429 ? 'rate_limited' : status < 500 ? 'validation' : 'internal';
    return new PalisadeError(code, status < 500 ? exception.message : 'internal error');
  }
  return new PalisadeError('internal', 'internal error');
}

const OPENAI_TYPE: Record<ErrorCode, string> = {
  validation: 'invalid_request_error',
  unauthenticated: 'authentication_error',
  forbidden: 'permission_error',
  not_found: 'invalid_request_error',
  conflict: 'invalid_request_error',
  illegal_state: 'invalid_request_error',
  payload_too_large: 'invalid_request_error',
  rate_limited: 'rate_limit_error',
  unavailable: 'server_error',
  internal: 'server_error',
};

const ANTHROPIC_TYPE: Record<ErrorCode, string> = {
  validation: 'invalid_request_error',
  unauthenticated: 'authentication_error',
  forbidden: 'permission_error',
  not_found: 'not_found_error',
  conflict: 'invalid_request_error',
  illegal_state: 'invalid_request_error',
  payload_too_large: 'request_too_large',
  rate_limited: 'rate_limit_error',
  unavailable: 'overloaded_error',
  internal: 'api_error',
};

function budgetOf(error: PalisadeError): object | undefined {
  return (error.details as { budget?: object } | undefined)?.budget;
}

/** A rate limit's refusal: which (agent or key, requests or tokens), and when to retry. */
function rateLimitOf(error: PalisadeError): { scope: string; kind: 'requests' | 'tokens'; limitPerMinute: number; retryAfterSeconds: number } | undefined {
  return (error.details as { rateLimit?: ReturnType<typeof rateLimitOf> } | undefined)?.rateLimit;
}

/** An answer held for review (guards/held-answers.service.ts): its id and the approval to ask for. */
function reviewOf(error: PalisadeError): object | undefined {
  return (error.details as { review?: object } | undefined)?.review;
}

abstract class ApiErrorFilter implements ExceptionFilter {
  constructor(@Inject(PLATFORM) private readonly platform: Pick<Platform, 'logger'>) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    const request = http.getRequest<Request>();
    const error = codedOf(exception);
    const status = httpStatusOf(error.code);
    if (error.code === 'internal') this.platform.logger.error({ err: exception, requestId: response.getHeader('x-request-id'), route: request.route?.path }, 'request failed');
    if (response.headersSent) {
      response.end();
      return;
    }
    // a rate limit says when to come back, as the providers do (the official SDKs honour it)
    const rateLimit = rateLimitOf(error);
    if (rateLimit) response.setHeader('retry-after', String(rateLimit.retryAfterSeconds));
    response.status(status).json(this.body(error, String(response.getHeader('x-request-id') ?? '')));
  }

  protected abstract body(error: PalisadeError, requestId: string): object;
}

/** Errors of the OpenAI-compatible routes in OpenAI's shape (`{ error: { message, type, param, code } }`); a budget refusal names its level, limit and reset. */
@Catch()
export class OpenAiErrorFilter extends ApiErrorFilter {
  protected body(error: PalisadeError, requestId: string): object {
    const budget = budgetOf(error);
    const rateLimit = rateLimitOf(error);
    if (rateLimit) return { error: { message: error.message, type: rateLimit.kind, param: null, code: 'rate_limit_exceeded', rate_limit: rateLimit, request_id: requestId } };
    const review = reviewOf(error);
    if (review) return { error: { message: error.message, type: 'review_required', param: null, code: 'review_required', review, request_id: requestId } };
    const code = budget ? 'budget_exceeded' : error.code === 'not_found' ? 'model_not_found' : error.code;
    return { error: { message: error.message, type: budget ? 'insufficient_quota' : OPENAI_TYPE[error.code], param: null, code, ...(budget ? { budget } : {}), request_id: requestId } };
  }
}

/** Errors of the Anthropic-compatible route in Anthropic's shape (`{ type: "error", error: { type, message } }`). */
@Catch()
export class AnthropicErrorFilter extends ApiErrorFilter {
  protected body(error: PalisadeError, requestId: string): object {
    const budget = budgetOf(error);
    const review = reviewOf(error);
    if (review) return { type: 'error', error: { type: 'review_required', message: error.message, review }, request_id: requestId };
    return { type: 'error', error: { type: ANTHROPIC_TYPE[error.code], message: error.message, ...(budget ? { budget } : {}) }, request_id: requestId };
  }
}
