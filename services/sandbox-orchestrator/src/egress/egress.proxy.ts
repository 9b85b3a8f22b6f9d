import { lookup } from 'node:dns/promises';
import { Agent as HttpAgent, createServer, request as httpRequest, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as netConnect, createServer as createTcpServer, isIP, type Server as TcpServer, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { checkServerIdentity, TLSSocket } from 'node:tls';
import type { EgressAuditBatcher, EgressDecision } from './egress.audit';
import type { SandboxCa } from './egress.ca';
import type { CredentialLeases } from './egress.credentials';
import { addressAllowed, decideConnect, decideRequest, DEFAULT_DENY, normalizeHost, type ConnectTarget, type EgressRule } from './egress.rules';
import { sniOf } from './tls-client-hello';

/** What the proxy needs to know of a sandbox, asked per connection (so a rule change applies to the next one). */
export interface EgressContext {
  tenantId: string;
  sessionId: string;
  rules: readonly EgressRule[];
}

export type EgressContextSource = (sandboxId: string) => Promise<EgressContext | undefined>;

export interface SandboxProxyOptions {
  /** The sandbox served; absent for a proxy prepared ahead (the pool), which refuses everything until `assign`. */
  sandboxId?: string;
  ca: SandboxCa;
  context: EgressContextSource;
  leases: CredentialLeases;
  audit: EgressAuditBatcher;
  /** Resolves a name (tests and the service: the system resolver). */
  resolve?: (host: string) => Promise<string[]>;
  /**
   * The ports on the proxy's address where connections made without the proxy arrive
   * (the sandbox's resolver answers allowed names with this address): HTTP decided by
   * Host, TLS by SNI. Default 80 and 443; 0 leaves one out.
   */
  transparentPorts?: { http: number; https: number };
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const REDACTED = '[redacted by palisade]';
/** How long a client may take to send its TLS ClientHello after CONNECT. */
const HELLO_TIMEOUT_MS = 10_000;

async function systemResolve(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/**
 * The egress proxy of one sandbox, listening on the host end of its link: CONNECT
 * (spliced, or TLS-intercepted with a leaf of the sandbox's CA when a rule governs the
 * host) and absolute-form HTTP on the proxy port; on 80 and 443 of the same address the
 * connections of programs that ignore proxy variables (the sandbox's resolver answers
 * allowed names with this address), decided by Host and SNI. Deny by default; every
 * decision audited.
 */
export class SandboxProxy {
  private readonly server: Server;
  private readonly inner: Server;
  /** Direct HTTP (origin-form, decided by Host) and TLS (decided by SNI) on the proxy's address. */
  private readonly directHttp: Server;
  private readonly directTls: TcpServer;
  private readonly sockets = new Set<Socket>();
  private readonly resolve: (host: string) => Promise<string[]>;
  private sandboxId: string | undefined;
  /**
   * Upstream connections kept alive between this sandbox's requests (never shared with
   * another sandbox): keyed by address, port, server name and CA, so a connection is
   * reused only for the same checked target.
   */
  private readonly upstreamAgents = { http: new HttpAgent({ keepAlive: true, maxSockets: 64 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }) };

  constructor(private readonly o: SandboxProxyOptions) {
    this.resolve = o.resolve ?? systemResolve;
    this.sandboxId = o.sandboxId;
    this.server = createServer((req, res) => void this.onPlainRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => void this.onConnect(req, socket, head));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void this.onPlainRequest(req, undefined, { socket, head }));
    this.server.on('connection', (s: Socket) => this.track(s));
    this.directHttp = createServer((req, res) => void this.onDirectRequest(req, res));
    this.directHttp.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void this.onDirectRequest(req, undefined, { socket, head }));
    this.directHttp.on('connection', (s: Socket) => this.track(s));
    this.directTls = createTcpServer((s) => {
      this.track(s);
      void this.onTransparentTls(s);
    });
    // the intercepted tunnels' requests: each TLS socket carries its own target
    this.inner = createServer((req, res) => {
      const target = (req.socket as TLSSocket & { palisadeTarget?: ConnectTarget }).palisadeTarget;
      if (!target) return void res.destroy();
      void this.onRequest(target, req, res, req.url ?? '/');
    });
    this.inner.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const target = (req.socket as TLSSocket & { palisadeTarget?: ConnectTarget }).palisadeTarget;
      if (!target) return void socket.destroy();
      void this.onRequest(target, req, undefined, req.url ?? '/', { socket, head });
    });
  }

  /** Listens on the proxy port and the transparent ones of `host`. */
  async listen(host: string, port: number): Promise<void> {
    const { http, https } = this.o.transparentPorts ?? { http: 80, https: 443 };
    await listenOn(this.server, host, port);
    if (http) await listenOn(this.directHttp, host, http);
    if (https) await listenOn(this.directTls, host, https);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.upstreamAgents.http.destroy();
    this.upstreamAgents.https.destroy();
    for (const server of [this.server, this.directHttp, this.directTls]) {
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Gives a proxy prepared ahead to the one sandbox it will serve (once: never another). */
  assign(sandboxId: string): void {
    if (this.sandboxId !== undefined) throw new Error('the proxy already serves a sandbox');
    this.sandboxId = sandboxId;
  }

  /** The sandbox's context now; none before the proxy serves a sandbox (everything refused). */
  private context(): Promise<EgressContext | undefined> {
    return this.sandboxId === undefined ? Promise.resolve(undefined) : this.o.context(this.sandboxId).catch(() => undefined);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  private audit(decision: Omit<EgressDecision, 'at'>): void {
    if (this.sandboxId !== undefined) this.o.audit.record(this.sandboxId, { at: new Date().toISOString(), ...decision });
  }

  private async onConnect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const refuse = (status: string, target: { host: string; port: number }, rule: string, reason: string) => {
      this.audit({ outcome: 'denied', stage: 'connect', host: target.host, port: target.port, rule, reason });
      socket.end(`HTTP/1.1 ${status}\r\nX-Palisade-Rule: ${rule}\r\nContent-Length: 0\r\n\r\n`);
    };
    const parsed = parseAuthority(req.url ?? '');
    if (!parsed) return refuse('400 Bad Request', { host: String(req.url ?? '').slice(0, 255), port: 0 }, 'default-deny', 'bad CONNECT target');
    const target: ConnectTarget = { scheme: 'https', ...parsed };
    const context = await this.context();
    if (!context) return refuse('503 Service Unavailable', target, 'default-deny', 'no egress context for the sandbox');
    const decision = decideConnect(context.rules, target);
    if (!decision.allow) return refuse('403 Forbidden', target, decision.rule, decision.reason);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (decision.mode === 'intercept') return this.intercept(target, socket, head);
    await this.splice(target, decision.rules, socket, await readHello(socket, head));
  }

  /**
   * A TLS connection straight to the proxy's address on 443 (a program that ignored the
   * proxy variables, its name answered by the sandbox's resolver): the target is the
   * ClientHello's SNI, decided as a CONNECT to it on 443 would be. No SNI: refused.
   */
  private async onTransparentTls(socket: Socket): Promise<void> {
    const port = this.o.transparentPorts?.https ?? 443;
    const hello = await readHello(socket, Buffer.alloc(0));
    const sni = hello ? sniOf(hello) : undefined;
    const host = sni ? normalizeHost(sni) : undefined;
    if (!hello || !host) {
      this.audit({ outcome: 'denied', stage: 'connect', host: '', port, rule: 'sni-mismatch', reason: 'direct TLS connection without a server name' });
      return void socket.destroy();
    }
    const target: ConnectTarget = { scheme: 'https', host, port };
    const context = await this.context();
    const decision = context ? decideConnect(context.rules, target) : ({ allow: false, rule: 'default-deny', reason: 'no egress context for the sandbox' } as const);
    if (!decision.allow) {
      this.audit({ outcome: 'denied', stage: 'connect', host, port, rule: decision.rule, reason: decision.reason });
      return void socket.destroy();
    }
    if (decision.mode === 'intercept') return this.intercept(target, socket, hello);
    await this.splice(target, decision.rules, socket, hello);
  }

  /** A spliced tunnel: the ClientHello's SNI must name the target, then the bytes pass untouched to an allowed address. */
  private async splice(target: ConnectTarget, rules: readonly EgressRule[], socket: Socket, hello: Buffer | undefined): Promise<void> {
    const sni = hello ? sniOf(hello) : undefined;
    if (!hello || sni === null || (sni === undefined && !isIP(target.host)) || (sni !== undefined && normalizeHost(sni) !== target.host)) {
      this.audit({ outcome: 'denied', stage: 'connect', host: target.host, port: target.port, rule: 'sni-mismatch', reason: `TLS server name ${sni ?? 'absent'} is not the CONNECT target` });
      return void socket.destroy();
    }
    const picked = await this.pickAddress(rules, target.host);
    if (!picked) {
      this.audit({ outcome: 'denied', stage: 'connect', host: target.host, port: target.port, rule: 'address-refused', reason: 'no allowed address (private, loopback, link-local or metadata)' });
      return void socket.destroy();
    }
    this.audit({ outcome: 'allowed', stage: 'connect', host: target.host, port: target.port, rule: picked.rule.id });
    const upstream = netConnect({ host: picked.address, port: target.port });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.once('connect', () => {
      upstream.write(hello);
      socket.pipe(upstream).pipe(socket);
    });
  }

  private async intercept(target: ConnectTarget, socket: Socket, head: Buffer): Promise<void> {
    const context = await this.o.ca.contextFor(target.host);
    if (head.length) socket.unshift(head);
    let refused = false;
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (servername, cb) => {
        if (normalizeHost(servername) !== target.host) {
          refused = true;
          this.audit({ outcome: 'denied', stage: 'connect', host: target.host, port: target.port, rule: 'sni-mismatch', reason: `TLS server name ${servername.slice(0, 253)} is not the CONNECT target` });
          return cb(new Error('server name is not the CONNECT target'));
        }
        cb(null, context);
      },
    }) as TLSSocket & { palisadeTarget?: ConnectTarget };
    tls.palisadeTarget = target;
    tls.on('error', () => {
      tls.destroy();
      socket.destroy();
      void refused;
    });
    this.inner.emit('connection', tls);
  }

  private async onPlainRequest(req: IncomingMessage, res: ServerResponse | undefined, upgrade?: Upgrade): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      this.audit({ outcome: 'denied', stage: 'request', host: '', port: 0, method: req.method, rule: 'default-deny', reason: 'not an absolute-form proxy request' });
      return refuse(res, upgrade, 400, 'default-deny', 'absolute-form requests only');
    }
    if (url.protocol !== 'http:') {
      this.audit({ outcome: 'denied', stage: 'request', host: url.hostname, port: Number(url.port) || 0, method: req.method, rule: 'default-deny', reason: 'https only through CONNECT' });
      return refuse(res, upgrade, 400, 'default-deny', 'use CONNECT for https');
    }
    const host = normalizeHost(url.hostname) ?? url.hostname;
    await this.onRequest({ scheme: 'http', host, port: Number(url.port) || 80 }, req, res, `${url.pathname}${url.search}`, upgrade);
  }

  /** An origin-form request straight to the proxy's address on 80: the target is the Host header's name (on this port). */
  private async onDirectRequest(req: IncomingMessage, res: ServerResponse | undefined, upgrade?: Upgrade): Promise<void> {
    const port = this.o.transparentPorts?.http ?? 80;
    const host = hostOfHeader(req.headers.host);
    if (!host || !(req.url ?? '').startsWith('/')) {
      this.audit({ outcome: 'denied', stage: 'request', host: host ?? '', port, method: req.method, rule: 'host-mismatch', reason: 'direct request without a Host name' });
      return refuse(res, upgrade, 400, 'host-mismatch', 'a Host header is required');
    }
    await this.onRequest({ scheme: 'http', host, port }, req, res, req.url ?? '/', upgrade);
  }

  /** One HTTP request (or, with `upgrade`, a WebSocket handshake) on an allowed connection: decided, then sent upstream with its credential. */
  private async onRequest(target: ConnectTarget, req: IncomingMessage, res: ServerResponse | undefined, path: string, upgrade?: Upgrade): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const base = { stage: 'request' as const, host: target.host, port: target.port, method, path: path.split('?')[0]!.slice(0, 512) };
    const deny = (status: number, rule: string, reason: string) => {
      this.audit({ ...base, outcome: 'denied', rule, reason });
      refuse(res, upgrade, status, rule, `egress denied (rule ${rule}): ${reason}`);
    };
    const hostHeader = hostOfHeader(req.headers.host);
    const headerPort = portOfHeader(req.headers.host) ?? (target.scheme === 'https' ? 443 : 80);
    if (hostHeader !== target.host || headerPort !== target.port) return deny(403, 'host-mismatch', `Host ${String(req.headers.host).slice(0, 255)} is not ${target.host}:${target.port}`);
    const context = await this.context();
    if (!context) return deny(503, 'default-deny', 'no egress context for the sandbox');
    const decision = decideRequest(context.rules, target, method, path);
    if (!decision.allow) return deny(403, decision.rule, decision.reason);
    const rule = decision.rule;
    if (upgrade) {
      const protocol = String(req.headers.upgrade ?? '').toLowerCase();
      // frames cannot be scrubbed: a WebSocket never carries an injected credential
      if (protocol !== 'websocket' || !rule.websocket || rule.inject) return deny(403, DEFAULT_DENY, `${target.scheme} upgrade (${protocol.slice(0, 32)}) not allowed by rule ${rule.id}`);
    }
    const picked = await this.pickAddress([rule], target.host);
    if (!picked) return deny(403, 'address-refused', 'no allowed address (private, loopback, link-local or metadata)');

    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.includes(name)) continue;
      headers[name] = value;
    }
    if (upgrade) Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket' });
    let needles: string[] = [];
    let upstreamPath = path;
    if (rule.inject) {
      let value: string;
      try {
        value = await this.o.leases.value({ tenantId: context.tenantId, sessionId: context.sessionId, sandboxId: this.sandboxId!, tool: rule.inject.tool, secretId: rule.inject.secretId });
      } catch (error) {
        return deny(502, rule.id, `credential unavailable: ${(error as Error).message.slice(0, 200)}`);
      }
      delete headers.authorization;
      delete headers.cookie;
      let injected: string;
      if (rule.inject.as.type === 'basic') {
        injected = `Basic ${Buffer.from(`${rule.inject.as.username}:${value}`).toString('base64')}`;
        headers.authorization = injected;
      } else if (rule.inject.as.type === 'query') {
        // the rule's parameter, whatever the client sent under that name replaced
        const at = path.indexOf('?');
        const params = new URLSearchParams(at < 0 ? '' : path.slice(at + 1));
        params.delete(rule.inject.as.name);
        params.append(rule.inject.as.name, value);
        upstreamPath = `${at < 0 ? path : path.slice(0, at)}?${params.toString()}`;
        injected = new URLSearchParams({ v: value }).toString().slice(2);
      } else {
        injected = `${rule.inject.as.prefix ?? ''}${value}`;
        delete headers[rule.inject.as.name.toLowerCase()];
        headers[rule.inject.as.name.toLowerCase()] = injected;
      }
      // upstream bodies are scrubbed: no compression the proxy could not read
      headers['accept-encoding'] = 'identity';
      needles = [...new Set([value, injected, injected.split(' ').pop() ?? '', encodeURIComponent(value), Buffer.from(value).toString('base64')])].filter((n) => n.length >= 4);
      this.audit({ ...base, outcome: 'injected', rule: rule.id, secretId: rule.inject.secretId });
    } else {
      this.audit({ ...base, outcome: 'allowed', rule: rule.id });
    }

    const send = target.scheme === 'https' ? httpsRequest : httpRequest;
    const upstream = send(
      {
        host: picked.address,
        port: target.port,
        method,
        path: upstreamPath,
        headers,
        // a WebSocket's connection leaves the pool; other requests reuse this sandbox's connections to the same checked target
        agent: upgrade ? false : this.upstreamAgents[target.scheme],
        ...(target.scheme === 'https'
          ? {
              servername: isIP(target.host) ? undefined : target.host,
              ca: rule.upstreamCaPem,
              checkServerIdentity: (_: string, cert: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(target.host, cert),
            }
          : {}),
      },
      (upstreamRes) => {
        if (!res) {
          // a handshake the upstream did not accept: its status, nothing more
          upstreamRes.resume();
          return refuse(undefined, upgrade, upstreamRes.statusCode ?? 502, rule.id, 'the upstream did not switch protocols');
        }
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (value === undefined || HOP_BY_HOP.includes(name)) continue;
          if (needles.length && name === 'content-length') continue;
          out[name] = Array.isArray(value) ? value.map((v) => scrub(v, needles)) : scrub(value, needles);
        }
        res.writeHead(upstreamRes.statusCode ?? 502, out);
        (needles.length ? upstreamRes.pipe(new Scrubber(needles)) : upstreamRes).pipe(res);
      },
    );
    upstream.on('error', (error) => {
      const message = `upstream failed: ${error.message.replaceAll(picked.address, target.host).slice(0, 200)}`;
      if (upgrade) return void (upgrade.socket.writable ? refuse(undefined, upgrade, 502, rule.id, message) : upgrade.socket.destroy());
      if (!res!.headersSent) res!.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end(`${message}\n`);
      else res!.destroy();
    });
    if (!upgrade) return void req.pipe(upstream);
    upstream.on('upgrade', (upstreamRes: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
      const client = upgrade.socket;
      const head = ['HTTP/1.1 101 Switching Protocols'];
      for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) head.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
      client.write(`${head.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length) client.write(upstreamHead);
      if (upgrade.head.length) upstreamSocket.write(upgrade.head);
      upstreamSocket.on('error', () => client.destroy());
      client.on('error', () => upstreamSocket.destroy());
      client.pipe(upstreamSocket).pipe(client);
    });
    upstream.end();
  }

  /** The first address of the name that a rule allows: the one the proxy connects to (no second lookup, so no rebinding). */
  private async pickAddress(rules: readonly EgressRule[], host: string): Promise<{ address: string; rule: EgressRule } | undefined> {
    for (const rule of rules) {
      const addresses = rule.addresses?.length ? rule.addresses : await this.resolve(host).catch(() => [] as string[]);
      const address = addresses.find((a) => addressAllowed(rule, a));
      if (address) return { address, rule };
    }
    return undefined;
  }
}

/** A WebSocket handshake: the client's socket and what it sent past the request head. */
interface Upgrade {
  socket: Socket;
  head: Buffer;
}

/** A refusal as a response, or on the raw socket of an upgrade request. */
function refuse(res: ServerResponse | undefined, upgrade: Upgrade | undefined, status: number, rule: string, text: string): void {
  if (res) return void res.writeHead(status, { 'content-type': 'text/plain', 'x-palisade-rule': rule, connection: 'close' }).end(`${text}\n`);
  upgrade?.socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}\r\nX-Palisade-Rule: ${rule}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\nConnection: close\r\n\r\n${text}\n`);
}

function listenOn(server: Server | TcpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const host = normalizeHost(m[1]!);
  const port = Number(m[2]);
  return host && port > 0 && port < 65536 ? { host, port } : undefined;
}

function hostOfHeader(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(value.trim());
  return m ? normalizeHost(m[1]!) : undefined;
}

function portOfHeader(value: string | undefined): number | undefined {
  const m = /:(\d+)$/.exec(value?.trim() ?? '');
  return m && !/^\[[^\]]*$/.test(value ?? '') ? Number(m[1]) : undefined;
}

function scrub(value: string, needles: readonly string[]): string {
  let out = value;
  for (const n of needles) out = out.split(n).join(REDACTED);
  return out;
}

/** Replaces the needles in a byte stream, holding back the tail that could begin one. */
export class Scrubber extends Transform {
  private carry: Buffer = Buffer.alloc(0);
  private readonly hold: number;
  private readonly needles: Buffer[];

  constructor(needles: readonly string[]) {
    super();
    this.needles = needles.map((n) => Buffer.from(n));
    this.hold = Math.max(0, ...this.needles.map((n) => n.length - 1));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const data = this.replace(Buffer.concat([this.carry, chunk]));
    const cut = Math.max(0, data.length - this.hold);
    this.carry = data.subarray(cut);
    cb(null, data.subarray(0, cut));
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.replace(this.carry));
  }

  private replace(data: Buffer): Buffer {
    let out = data;
    for (const needle of this.needles) {
      let at = out.indexOf(needle);
      if (at < 0) continue;
      const parts: Buffer[] = [];
      let from = 0;
      while (at >= 0) {
        parts.push(out.subarray(from, at), Buffer.from(REDACTED));
        from = at + needle.length;
        at = out.indexOf(needle, from);
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
    }
    return out;
  }
}

/** The first TLS record from the client (head first), or undefined when none comes in time. */
function readHello(socket: Socket, head: Buffer): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let buffered = head;
    const done = (value: Buffer | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve(value);
    };
    const complete = () => buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt16BE(3);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (complete() || buffered.length > 16_384 + 5) done(buffered);
    };
    const timer = setTimeout(() => done(undefined), HELLO_TIMEOUT_MS);
    if (complete()) return done(buffered);
    socket.on('data', onData);
    socket.once('close', () => done(undefined));
  });
}

export type { IncomingHttpHeaders };
