import pino, { type Logger, type DestinationStream } from 'pino';
import { trace } from '@opentelemetry/api';
import { redact } from './redact';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream;
}

/**
 * JSON logs, one line an entry, with the service name, the active trace and span ids,
 * and every sensitive key redacted at any depth.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      // Errors are already shaped by `redact` (type, message, stack, redacted fields; database
      // errors without query, parameters or values); pino's own serializer would re-shape them.
      serializers: { err: (err: unknown) => err },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redact(object) as Record<string, unknown>,
      },
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        return span ? { traceId: span.traceId, spanId: span.spanId } : {};
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
