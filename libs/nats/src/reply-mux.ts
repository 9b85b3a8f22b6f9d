import { createInbox, Events, type Msg, type MsgHdrs, type NatsConnection } from 'nats';
import { PalisadeError } from '@palisade/contracts';
import { inboxPrefixOf } from './connection';

interface Pending {
  subject: string;
  timer: NodeJS.Timeout;
  resolve: (data: Uint8Array) => void;
  reject: (error: PalisadeError) => void;
}

/**
 * Request-reply over one wildcard inbox subscription per connection, as nats.js's own
 * `request` does, but without its per-request costs: nats.js settles every answered
 * request by also rejecting it with a freshly built "Cancelled" NatsError (an Error with
 * a captured stack), which at tens of thousands of decisions a second was a quarter of
 * a caller's CPU (measured: 28k → 53k requests/s on one core pair). Failures map to
 * PalisadeErrors as before: no responders (the server's 503 status reply) and timeouts
 * are `unavailable`, a publish the connection is not permitted is `forbidden`.
 */
export class ReplyMux {
  private static readonly muxes = new WeakMap<NatsConnection, ReplyMux>();
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private next = 0;

  /**
   * Ask `subject` on `nc` and resolve with the reply's bytes. `headers` may be made for
   * the reply subject the request gets (a signature binding it: rpc-caller.ts).
   */
  static request(nc: NatsConnection, subject: string, data: Uint8Array, timeoutMs: number, headers?: MsgHdrs | ((reply: string) => Promise<MsgHdrs>)): Promise<Uint8Array> {
    if (nc.isClosed()) return Promise.reject(new PalisadeError('unavailable', 'the NATS connection is closed'));
    return ReplyMux.of(nc).request(subject, data, timeoutMs, headers);
  }

  private static of(nc: NatsConnection): ReplyMux {
    let mux = ReplyMux.muxes.get(nc);
    if (!mux) ReplyMux.muxes.set(nc, (mux = new ReplyMux(nc)));
    return mux;
  }

  private constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox(inboxPrefixOf(nc))}.`;
    nc.subscribe(`${this.prefix}*`, { callback: (error, msg) => error === null && this.settle(msg) });
    void this.watchPermissionErrors();
    void nc.closed().then(() => this.failAll(new PalisadeError('unavailable', 'the NATS connection is closed')));
  }

  private request(subject: string, data: Uint8Array, timeoutMs: number, headers?: MsgHdrs | ((reply: string) => Promise<MsgHdrs>)): Promise<Uint8Array> {
    const token = (this.next++).toString(36);
    if (typeof headers === 'function') return headers(this.prefix + token).then((h) => this.send(token, subject, data, timeoutMs, h));
    return this.send(token, subject, data, timeoutMs, headers);
  }

  private send(token: string, subject: string, data: Uint8Array, timeoutMs: number, headers: MsgHdrs | undefined): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new PalisadeError('unavailable', `${subject} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(token, { subject, timer, resolve, reject });
      try {
        this.nc.publish(subject, data, headers ? { reply: this.prefix + token, headers } : { reply: this.prefix + token });
      } catch (error) {
        this.fail(token, new PalisadeError('unavailable', `request to ${subject} failed: ${(error as Error).message}`));
      }
    });
  }

  private settle(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // late (timed out) or foreign
    this.pending.delete(token);
    clearTimeout(p.timer);
    // With no subscriber on the subject, the server answers at once with status 503.
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new PalisadeError('unavailable', `no service answers ${p.subject}`));
    else p.resolve(msg.data);
  }

  private fail(token: string, error: PalisadeError): void {
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    clearTimeout(p.timer);
    p.reject(error);
  }

  private failAll(error: PalisadeError): void {
    for (const token of [...this.pending.keys()]) this.fail(token, error);
  }

  /** The server refuses a publish with an asynchronous -ERR naming the subject. */
  private async watchPermissionErrors(): Promise<void> {
    for await (const s of this.nc.status()) {
      const denied = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (s.type !== Events.Error || denied?.operation !== 'publish') continue;
      for (const [token, p] of this.pending) {
        if (p.subject === denied.subject) this.fail(token, new PalisadeError('forbidden', `not permitted to request ${p.subject}`));
      }
    }
  }
}
