import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { PalisadeError, serviceOfReplySubject, type ServiceName } from '@palisade/contracts';
import { silentLogger, type NatsLogger } from './logger';
import { rpcWireSubject, toWireError, type RpcReply } from './rpc';
import { CALLER_HEADER, verifyCaller, type RpcCallerTrust } from './rpc-caller';
import { extractTraceContext } from './trace';

/**
 * Who asked. `service` is the service whose inbox the reply goes to
 * (`serviceOfReplySubject`): only that service receives the answer, so it is who asked
 * whenever only the answer matters. Any service may name another's inbox, though, so for
 * a side effect that must be the named service's own (redeeming an approval) only a
 * `proven` caller counts: the request carried a valid `Palisade-Caller` signature by
 * that very service (rpc-caller.ts).
 */
export interface RpcCaller {
  service: ServiceName | undefined;
  proven: boolean;
}

/**
 * A request handler: gets the request's JSON payload (`null` for an empty body,
 * `undefined` when the body is not JSON, so that its input validation refuses it) and
 * returns the result, or a promise of it. A thrown PalisadeError is answered with its
 * code; anything else as `internal` (logged, message withheld). `caller` is the service
 * whose inbox the reply goes to; `asker` says whether that is proven (RpcCaller).
 */
export type RpcHandler = (payload: unknown, subject: string, caller: ServiceName | undefined, asker: RpcCaller) => unknown;

export interface ServeRpcOptions {
  /** Queue group: the service's replicas share the requests. */
  service: ServiceName;
  /** `palisade.rpc.<service>.<method>` → handler. */
  handlers: Readonly<Record<string, RpcHandler>>;
  tracer?: Tracer;
  logger?: NatsLogger;
  /**
   * The platform CA that signed requests' certificates must chain to (the service's
   * ServiceIdentity). Without it a signed request is refused: it cannot be verified.
   */
  trust?: RpcCallerTrust;
}

export interface RpcServer {
  /** Stop taking requests, then wait (at most `graceMs`) for the ones in progress to be answered. */
  stop(graceMs?: number): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Answer `palisade.rpc.<service>.<method>` requests on an existing connection (e.g.
 * `platform.nats`) from plain nats.js queue subscriptions (queue = service): the one way
 * a Palisade service answers another. Wire format and coded errors as `rpcRequest`
 * expects them, a SERVER span per request (child of the caller's trace context). The
 * connection's identity and NATS permissions apply as they are: who may ask a method is
 * `deploy/local/nats-requests.txt`; the handler learns who asked from `caller`.
 */
export function serveRpc(nc: NatsConnection, options: ServeRpcOptions): RpcServer {
  const tracer = options.tracer ?? trace.getTracer('@palisade/nats');
  const logger = options.logger ?? silentLogger;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const finish = (msg: Msg, span: Span, reply: RpcReply) => {
    let body = reply;
    let data: Uint8Array;
    try {
      data = encoder.encode(JSON.stringify(body));
    } catch (error) {
      body = { error: toWireError(error, logger, msg.subject) }; // e.g. a BigInt or a cycle in the result
      data = encoder.encode(JSON.stringify(body));
    }
    try {
      msg.respond(data);
    } catch (error) {
      logger.warn({ err: (error as Error).message, subject: msg.subject }, 'RPC reply not sent');
    }
    if ('error' in body) span.setStatus({ code: SpanStatusCode.ERROR, message: body.error.code });
    span.end();
    if (--inFlight === 0) idle?.();
  };
  const fail = (msg: Msg, span: Span, error: unknown) => {
    span.recordException(error as Error);
    finish(msg, span, { error: toWireError(error, logger, msg.subject) });
  };

  const subscriptions: Subscription[] = Object.entries(options.handlers).map(([subject, handler]) => {
    const attributes = { 'rpc.system': 'nats', 'messaging.system': 'nats', 'messaging.destination.name': subject };
    const name = `process ${subject}`;
    // No attributes at the start: the SDK copies and checks them before it knows whether the
    // span is recorded; a non-recording span (no exporter) gets none, a recording one gets them at once.
    const spanOptions = { kind: SpanKind.SERVER };
    return nc.subscribe(rpcWireSubject(subject), {
      queue: options.service,
      callback: (err, msg) => {
        if (err) {
          logger.error({ err: err.message, subject }, 'RPC subscription failed');
          return;
        }
        if (!msg.reply) return; // a publish, not a request: nobody to answer
        inFlight++;
        const parent = extractTraceContext(msg.headers);
        const span = tracer.startSpan(name, spanOptions, parent);
        if (span.isRecording()) span.setAttributes(attributes);
        const answer = (asker: RpcCaller) => {
          const payload = parsePayload(msg.data);
          const result = context.with(trace.setSpan(parent, span), () => handler(payload, subject, asker.service, asker));
          if (isThenable(result)) {
            result.then(
              (value) => finish(msg, span, { result: value === undefined ? null : value }),
              (error: unknown) => fail(msg, span, error),
            );
          } else {
            finish(msg, span, { result: result === undefined ? null : result });
          }
        };
        try {
          const signature = msg.headers?.get(CALLER_HEADER);
          // Unsigned requests (nearly all) are answered at once, without any verification cost.
          if (!signature) return answer({ service: serviceOfReplySubject(msg.reply), proven: false });
          provenCaller(signature, msg, options.trust).then(
            (service) => {
              try {
                answer({ service, proven: true });
              } catch (error) {
                fail(msg, span, error);
              }
            },
            (error: unknown) => {
              // a security signal: someone presented a signature that proves nothing here
              logger.warn({ err: (error as Error).message, subject, inbox: serviceOfReplySubject(msg.reply) }, 'RPC request with a bad caller signature refused');
              fail(msg, span, error);
            },
          );
        } catch (error) {
          fail(msg, span, error);
        }
      },
    });
  });

  return {
    async stop(graceMs = 5000) {
      await Promise.all(subscriptions.map((s) => (s.isClosed() ? undefined : s.drain().catch(() => undefined))));
      if (inFlight === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        idle = resolve;
        timer = setTimeout(() => {
          logger.warn({ inFlight }, 'RPC requests still in progress at stop: not waiting for them');
          resolve();
        }, graceMs);
      });
      clearTimeout(timer);
    },
  };
}

/** The service that signed `msg` (its `Palisade-Caller` signature), which is the one its reply goes to. */
async function provenCaller(signature: string, msg: Msg, trust: RpcCallerTrust | undefined): Promise<ServiceName> {
  if (!trust) throw new PalisadeError('forbidden', `${CALLER_HEADER}: this service does not verify signed requests`);
  return verifyCaller(signature, { subject: msg.subject, reply: msg.reply!, data: msg.data }, trust.current().caPem);
}

/** The request's JSON (`null` when empty); a body that is not JSON is refused here, before any handler. */
function parsePayload(data: Uint8Array): unknown {
  if (data.length === 0) return null;
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    throw new PalisadeError('validation', 'request: must be a JSON object');
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
