import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { PalisadeError } from '@palisade/contracts';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

/** Stamps every response with a request id (the caller's, if well-formed) and security headers. */
export function requestContext(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.header('x-request-id');
  res.setHeader('x-request-id', incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID());
  res.setHeader('strict-transport-security', 'max-age=63072000; includeSubDomains');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cache-control', 'no-store');
  next();
}

/**
 * While dependencies are not connected, the API answers 503 instead of failing deep
 * inside a handler; health, metrics and docs stay reachable.
 */
export function readinessGate(isReady: () => boolean) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (isReady() || /^\/(health|metrics|docs)(\/|$)/.test(req.path)) return next();
    next(new PalisadeError('unavailable', 'service is starting: dependencies are not connected yet'));
  };
}
