import {
  Catch,
  HttpException,
  Injectable,
  type ArgumentsHost,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type RpcExceptionFilter,
} from '@nestjs/common';
import { NatsContext, Transport, type NatsOptions } from '@nestjs/microservices';
import { context, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from 'nats';
import { Observable, throwError } from 'rxjs';
import { PalisadeError, type ErrorBody, type ErrorCode, type ServiceName } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { identityTlsOptions, inboxPrefixFor, RECONNECT_OPTIONS } from './connection';
import { silentLogger, type NatsLogger } from './logger';
import { ReplyMux } from './reply-mux';
import { extractTraceContext, traceHeaders } from './trace';

/*
 * Wire format of palisade.rpc.<service>.<method>, plain JSON that any NATS client speaks:
 *   request  the payload itself; trace context in `traceparent` / `tracestate` headers
 *   reply    { "result": <value> }  or  { "error": { "code", "message", "details"? } }
 */
export type RpcReply<T = unknown> = { result: T } | ErrorBody;
export type WireError = ErrorBody['error'];

const ERROR_CODES: readonly ErrorCode[] = [
  'validation',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'illegal_state',
  'payload_too_large',
  'rate_limited',
  'unavailable',
  'internal',
];
const isErrorCode = (v: unknown): v is ErrorCode => typeof v === 'string' && (ERROR_CODES as readonly string[]).includes(v);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const INTERNAL: WireError = { code: 'internal', message: 'internal error' };

function isWireError(v: unknown): v is WireError {
  return typeof v === 'object' && v !== null && isErrorCode((v as WireError).code) && typeof (v as WireError).message === 'string';
}

/** Nest deserializer: the request body is the payload; its reply subject makes it a request. */
export class RpcRequestDeserializer {
  deserialize(value: Uint8Array, options?: { channel?: string; replyTo?: string }) {
    let data: unknown;
    try {
      data = value?.length ? JSON.parse(decoder.decode(value)) : null;
    } catch {
      data = undefined; // not JSON: the handler's input validation refuses it
    }
    const pattern = options?.channel ?? '';
    return options?.replyTo ? { pattern, data, id: options.replyTo } : { pattern, data };
  }
}

/** Nest serializer: `{ result }` or `{ error }` (errors come coded from RpcErrorFilter). */
export class RpcReplySerializer {
  serialize(packet: { response?: unknown; err?: unknown }) {
    const body: RpcReply =
      packet.err !== undefined && packet.err !== null
        ? { error: isWireError(packet.err) ? packet.err : typeof packet.err === 'string' && /no matching message handler/i.test(packet.err) ? { code: 'not_found', message: 'no handler for this request' } : INTERNAL }
        : { result: packet.response === undefined ? null : packet.response };
    return { data: encoder.encode(JSON.stringify(body)), headers: undefined };
  }
}

const HTTP_CODES: Record<number, ErrorCode> = {
  400: 'validation',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  422: 'validation',
  429: 'rate_limited',
};

/**
 * The one NATS error filter of a service (`app.useGlobalFilters(new RpcErrorFilter(logger))`
 * on the microservice): a PalisadeError becomes its coded reply; a Nest HttpException of
 * a client error (e.g. from ValidationPipe) the matching code; anything else is logged
 * and answered `internal` without its message.
 */
@Catch()
export class RpcErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(private readonly logger: NatsLogger = silentLogger) {}

  catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    const error = toWireError(exception, this.logger, subjectOf(host));
    return throwError(() => error);
  }
}

/**
 * The coded wire error of whatever a request handler threw: a PalisadeError its own
 * code and message; a Nest HttpException of a client error the matching code; anything
 * else is logged (with `subject`) and answered `internal` without its message.
 */
export function toWireError(exception: unknown, logger: NatsLogger = silentLogger, subject?: string): WireError {
  if (exception instanceof PalisadeError) {
    if (exception.code === 'internal') logger.error({ err: exception, subject }, 'RPC handler failed');
    return exception.toBody().error;
  }
  if (exception instanceof HttpException && HTTP_CODES[exception.getStatus()]) {
    const response = exception.getResponse();
    const details = typeof response === 'object' ? (response as { message?: unknown }).message : undefined;
    const error: WireError = { code: HTTP_CODES[exception.getStatus()], message: exception.message };
    if (details !== undefined) error.details = details;
    return error;
  }
  logger.error({ err: exception, subject }, 'RPC handler failed');
  return INTERNAL;
}

function subjectOf(host: ArgumentsHost): string | undefined {
  if (host.getType() !== 'rpc') return undefined;
  const ctx = host.switchToRpc().getContext<unknown>();
  return ctx instanceof NatsContext ? ctx.getSubject() : undefined;
}

/**
 * Runs each NATS request handler in a SERVER span whose parent is the caller's trace
 * context (`app.useGlobalInterceptors(new RpcTraceInterceptor())` on the microservice).
 */
@Injectable()
export class RpcTraceInterceptor implements NestInterceptor {
  constructor(private readonly tracer: Tracer = trace.getTracer('@palisade/nats')) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const natsCtx = ctx.getType() === 'rpc' ? ctx.switchToRpc().getContext<unknown>() : undefined;
    if (!(natsCtx instanceof NatsContext)) return next.handle();
    const subject = natsCtx.getSubject();
    const parent = extractTraceContext(natsCtx.getHeaders() as MsgHdrs | undefined);
    return new Observable((subscriber) => {
      const span = this.tracer.startSpan(
        `process ${subject}`,
        { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'nats', 'messaging.system': 'nats', 'messaging.destination.name': subject } },
        parent,
      );
      const subscription = context.with(trace.setSpan(parent, span), () =>
        next.handle().subscribe({
          next: (v) => subscriber.next(v),
          error: (e: unknown) => {
            span.recordException(e as Error);
            span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
            subscriber.error(e);
          },
          complete: () => {
            span.end();
            subscriber.complete();
          },
        }),
      );
      return () => subscription.unsubscribe();
    });
  }
}

export interface NatsTransportInput {
  servers: string | string[];
  identity: ServiceIdentity;
  /** Answers palisade.rpc.<service>.>; its replicas share the queue group `<service>`. */
  service: ServiceName;
  /** Connection name. Default `<service>-rpc`. */
  name?: string;
}

/**
 * Options of `app.connectMicroservice(...)` for a hybrid Nest app that answers
 * `palisade.rpc.<service>.<method>` with `@MessagePattern('palisade.rpc.<service>.<method>')`:
 * mTLS with the identity's current certificate, queue group per service, reconnect forever.
 */
export function natsTransportOptions(input: NatsTransportInput): NatsOptions & { transport: Transport.NATS } {
  return {
    transport: Transport.NATS,
    options: {
      servers: input.servers,
      name: input.name ?? `${input.service}-rpc`,
      tls: identityTlsOptions(input.identity),
      inboxPrefix: inboxPrefixFor(input.identity.current().spiffeId),
      queue: input.service,
      serializer: new RpcReplySerializer(),
      deserializer: new RpcRequestDeserializer(),
      gracefulShutdown: true,
      gracePeriod: 2000,
      waitOnFirstConnect: true,
      ...RECONNECT_OPTIONS,
    },
  };
}

export interface RpcRequestOptions {
  /** Default 5 s. */
  timeoutMs?: number;
  tracer?: Tracer;
}

/**
 * Ask `subject` (palisade.rpc.<service>.<method>) and return its result. A coded error
 * reply is thrown as PalisadeError with its code; no answer in time, or no service
 * listening, as `unavailable`.
 */
export async function rpcRequest<T = unknown>(
  nc: NatsConnection,
  subject: string,
  payload: unknown,
  options: RpcRequestOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const tracer = options.tracer ?? trace.getTracer('@palisade/nats');
  // The CLIENT span is the parent of the service's span through the headers; it need
  // not become the active context (nothing runs inside it), which saves a context switch.
  const span = tracer.startSpan(`send ${subject}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'rpc.system': 'nats', 'messaging.system': 'nats', 'messaging.destination.name': subject },
  });
  try {
    return await request<T>(nc, subject, payload, timeoutMs, traceHeadersOf(trace.setSpan(context.active(), span)));
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}

/** NATS headers carrying the trace context of `ctx`, or none when there is nothing to carry. */
function traceHeadersOf(ctx: Context): MsgHdrs | undefined {
  const values = traceHeaders(ctx);
  if (values.length === 0) return undefined;
  const h = natsHeaders();
  for (const [key, value] of values) h.set(key, value);
  return h;
}

async function request<T>(nc: NatsConnection, subject: string, payload: unknown, timeoutMs: number, h: MsgHdrs | undefined): Promise<T> {
  const data = await ReplyMux.request(nc, subject, encoder.encode(JSON.stringify(payload ?? null)), timeoutMs, h);
  let reply: unknown;
  try {
    reply = JSON.parse(decoder.decode(data));
  } catch {
    throw new PalisadeError('internal', `malformed reply from ${subject}`);
  }
  if (typeof reply === 'object' && reply !== null) {
    const { error } = reply as { error?: unknown };
    if (isWireError(error)) throw new PalisadeError(error.code, error.message, error.details);
    if ('result' in reply) return (reply as { result: T }).result;
  }
  throw new PalisadeError('internal', `malformed reply from ${subject}`);
}
