import { context, propagation, ROOT_CONTEXT, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from 'nats';

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => (carrier?.has(key) ? carrier.get(key) : undefined),
};

/**
 * W3C trace context of `ctx` (default: the active one) as header values, computed once
 * and copied into many messages (`traceparent`, `tracestate` with the W3C propagator).
 */
export function traceHeaders(ctx: Context = context.active()): [string, string][] {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return Object.entries(carrier);
}

/** Put the trace context of `ctx` (default: the active one) into NATS headers. */
export function injectTraceContext(h: MsgHdrs = natsHeaders(), ctx: Context = context.active()): MsgHdrs {
  propagation.inject(ctx, h, setter);
  return h;
}

/** The context whose parent is the trace context carried by NATS headers (or none). */
export function extractTraceContext(h: MsgHdrs | undefined, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, h, getter);
}
