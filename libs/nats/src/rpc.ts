import { context, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from 'nats';
import { PalisadeError, type ErrorBody, type ErrorCode } from '@palisade/contracts';
import { silentLogger, type NatsLogger } from './logger';
import { ReplyMux } from './reply-mux';
import { CALLER_HEADER, signCaller, type RpcSigner } from './rpc-caller';
import { traceHeaders } from './trace';

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

const NAMESPACE = /^[a-z0-9]{1,32}$/;

/**
 * The subject a request travels on. With PALISADE_RPC_NAMESPACE=<ns> (letters and digits)
 * requests are asked and answered on `<subject>.<ns>`: deployments that share one NATS
 * server (end-to-end suites running side by side) then never answer each other's requests
 * through the shared queue groups. Unset in production, where a NATS server serves one
 * deployment; the namespaced subjects are granted only with the test permissions
 * (deploy/local/nats.sh). Read per call, so a test process can join the deployment it starts.
 */
export function rpcWireSubject(subject: string): string {
  const namespace = process.env.PALISADE_RPC_NAMESPACE;
  if (!namespace) return subject;
  if (!NAMESPACE.test(namespace)) throw new Error('PALISADE_RPC_NAMESPACE must be 1 to 32 lowercase letters or digits');
  return `${subject}.${namespace}`;
}
const decoder = new TextDecoder();
const INTERNAL: WireError = { code: 'internal', message: 'internal error' };

function isWireError(v: unknown): v is WireError {
  return typeof v === 'object' && v !== null && isErrorCode((v as WireError).code) && typeof (v as WireError).message === 'string';
}

/**
 * The coded wire error of whatever a request handler threw: a PalisadeError its own
 * code, message and details; anything else is logged (with `subject`) and answered
 * `internal` without its message.
 */
export function toWireError(exception: unknown, logger: NatsLogger = silentLogger, subject?: string): WireError {
  if (exception instanceof PalisadeError) {
    if (exception.code === 'internal') logger.error({ err: exception, subject }, 'RPC handler failed');
    return exception.toBody().error;
  }
  logger.error({ err: exception, subject }, 'RPC handler failed');
  return INTERNAL;
}

export interface RpcRequestOptions {
  /** Default 5 s. */
  timeoutMs?: number;
  tracer?: Tracer;
  /**
   * Sign the request as this service (its ServiceIdentity): a `Palisade-Caller` header
   * proving to the responder who asked (rpc-caller.ts). For requests whose side effect
   * matters (redeeming an approval); costs a signature, so not for the hot path.
   */
  signAs?: RpcSigner;
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
    const h = traceHeadersOf(trace.setSpan(context.active(), span));
    return await request<T>(nc, subject, payload, timeoutMs, options.signAs ? signedHeaders(options.signAs, h) : h);
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

/** The headers `h` plus a `Palisade-Caller` signature over the message, made once its reply subject is known. */
function signedHeaders(signer: RpcSigner, h: MsgHdrs | undefined) {
  return (wireSubject: string, data: Uint8Array) =>
    async (reply: string): Promise<MsgHdrs> => {
      const signed = h ?? natsHeaders();
      signed.set(CALLER_HEADER, await signCaller(signer, wireSubject, reply, data));
      return signed;
    };
}

type SignedHeaders = ReturnType<typeof signedHeaders>;

async function request<T>(nc: NatsConnection, subject: string, payload: unknown, timeoutMs: number, h: MsgHdrs | SignedHeaders | undefined): Promise<T> {
  const wireSubject = rpcWireSubject(subject);
  const body = encoder.encode(JSON.stringify(payload ?? null));
  const data = await ReplyMux.request(nc, wireSubject, body, timeoutMs, typeof h === 'function' ? h(wireSubject, body) : h);
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
