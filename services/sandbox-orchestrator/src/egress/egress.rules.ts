import { isIP } from 'node:net';

/**
 * Egress rules (pure). Deny by default: a connection or request passes only when a rule
 * allows it. A rule names a host (exact, or `*.suffix` for any name below the suffix,
 * never the suffix itself), ports, and optionally methods and path prefixes; the
 * addresses it may resolve to (naming them allows private or loopback ones); the CA that
 * verifies the upstream; a secret to inject.
 */
export interface EgressRule {
  id: string;
  /** `gerrit.acme.internal`, `*.example.com`, or an IP literal (then only that address). */
  host: string;
  scheme?: 'https' | 'http';
  /** Default: 443 for https, 80 for http. */
  ports?: number[];
  /** Upper-case; default any. A rule with methods or paths is TLS-intercepted (they are inside the tunnel). */
  methods?: string[];
  /** Each must start with `/`; default any. */
  pathPrefixes?: string[];
  /** The proxy connects to these instead of resolving the name (and they may be private, loopback…: the rule names them). */
  addresses?: string[];
  /** PEM: verifies the upstream instead of the system roots. */
  upstreamCaPem?: string;
  /** Terminate TLS even without methods, paths or injection (default: only when needed). */
  intercept?: boolean;
  /** Let WebSocket upgrades through (on the paths and methods the rule allows); default: refused. */
  websocket?: boolean;
  inject?: EgressInjection;
}

export interface EgressInjection {
  /** The vault secret (its id; the value never leaves the proxy). */
  secretId: string;
  /** The tool the lease is asked for (the secret must carry scope `tool:<tool>`). */
  tool: string;
  as: { type: 'header'; name: string; prefix?: string } | { type: 'basic'; username: string } | { type: 'query'; name: string };
}

export interface ConnectTarget {
  scheme: 'https' | 'http';
  host: string;
  port: number;
}

export type ConnectDecision = { allow: false; rule: string; reason: string } | { allow: true; mode: 'splice' | 'intercept'; rules: EgressRule[] };

export type RequestDecision = { allow: false; rule: string; reason: string } | { allow: true; rule: EgressRule };

export const DEFAULT_DENY = 'default-deny';

/** Lower case, without a trailing dot or IPv6 brackets; undefined when not a host name or IP. */
export function normalizeHost(host: string): string | undefined {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (isIP(h)) return h;
  if (h.length === 0 || h.length > 253) return undefined;
  return /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(h) ? h : undefined;
}

export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return p === host;
}

function portsOf(rule: EgressRule): number[] {
  return rule.ports ?? [(rule.scheme ?? 'https') === 'https' ? 443 : 80];
}

export function needsInterception(rule: EgressRule): boolean {
  return Boolean(rule.intercept || rule.inject || rule.websocket || rule.methods?.length || rule.pathPrefixes?.length);
}

/** Per connection (CONNECT, or an absolute-form request before its method and path): host, port, scheme. */
export function decideConnect(rules: readonly EgressRule[], target: ConnectTarget): ConnectDecision {
  const host = normalizeHost(target.host);
  if (!host) return { allow: false, rule: DEFAULT_DENY, reason: 'not a host name' };
  const matched = rules.filter((r) => (r.scheme ?? 'https') === target.scheme && hostMatches(r.host, host) && portsOf(r).includes(target.port));
  if (matched.length === 0) return { allow: false, rule: DEFAULT_DENY, reason: `no rule allows ${host}:${target.port}` };
  return { allow: true, mode: target.scheme === 'http' || matched.some(needsInterception) ? 'intercept' : 'splice', rules: matched };
}

/**
 * Whether the sandbox's resolver answers `name` (pure): some rule names it (exactly, or
 * below its `*.suffix`), whatever the port or scheme. IP-literal rules name no name.
 */
export function nameAllowed(rules: readonly EgressRule[], name: string): boolean {
  const host = normalizeHost(name);
  if (!host || isIP(host)) return false;
  return rules.some((r) => !isIP(r.host) && hostMatches(r.host, host));
}

/** A path the prefixes can be trusted on: no dot segments, no encoded slash, dot or backslash. */
export function canonicalPath(path: string): boolean {
  if (!path.startsWith('/')) return false;
  const pathname = path.split('?')[0]!;
  if (/%2e|%2f|%5c|\\/i.test(pathname)) return false;
  return !pathname.split('/').some((segment) => segment === '.' || segment === '..');
}

/** Per request inside an allowed connection: the first rule (in order) allowing method and path. */
export function decideRequest(rules: readonly EgressRule[], target: ConnectTarget, method: string, path: string): RequestDecision {
  const connect = decideConnect(rules, target);
  if (!connect.allow) return connect;
  if (!canonicalPath(path)) return { allow: false, rule: DEFAULT_DENY, reason: 'path not canonical' };
  const m = method.toUpperCase();
  for (const rule of connect.rules) {
    if (rule.methods?.length && !rule.methods.map((x) => x.toUpperCase()).includes(m)) continue;
    if (rule.pathPrefixes?.length && !rule.pathPrefixes.some((prefix) => path.startsWith(prefix))) continue;
    return { allow: true, rule };
  }
  return { allow: false, rule: DEFAULT_DENY, reason: `no rule allows ${m} ${path.split('?')[0]} on ${target.host}` };
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'metadata' | 'unspecified' | 'multicast' | 'reserved';

function ipv4Parts(address: string): number[] | undefined {
  const parts = address.split('.').map(Number);
  return parts.length === 4 && parts.every((n) => Number.isInteger(n) && n >= 0 && n <= 255) ? parts : undefined;
}

/** What an address is (IPv4, IPv6, IPv4-mapped IPv6). */
export function classifyAddress(address: string): AddressClass {
  const a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return classifyAddress(mapped[1]!);
  const v4 = ipv4Parts(a);
  if (v4) {
    const [x, y] = v4 as [number, number, number, number];
    if (a === '169.254.169.254' || a === '100.100.100.200' || a === '192.0.0.192') return 'metadata';
    if (x === 0) return 'unspecified';
    if (x === 127) return 'loopback';
    if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127)) return 'private';
    if (x === 169 && y === 254) return 'link-local';
    if (x >= 224 && x <= 239) return 'multicast';
    if (x >= 240 || (x === 192 && y === 0) || (x === 198 && (y === 18 || y === 19))) return 'reserved';
    return 'public';
  }
  if (isIP(a) !== 6) return 'reserved';
  if (a === '::1') return 'loopback';
  if (a === '::') return 'unspecified';
  if (a === 'fd00:ec2::254') return 'metadata';
  if (/^f[cd]/.test(a)) return 'private';
  if (/^fe[89ab]/.test(a)) return 'link-local';
  if (a.startsWith('ff')) return 'multicast';
  if (a.startsWith('64:ff9b:') || a.startsWith('2001:db8:') || a.startsWith('::')) return 'reserved';
  return 'public';
}

/**
 * Whether the proxy may connect to `address` for `rule`: an address the rule names, or a
 * public one. The proxy connects to exactly the address it checked (no second lookup).
 */
export function addressAllowed(rule: EgressRule, address: string): boolean {
  if (rule.addresses?.includes(address)) return true;
  if (isIP(rule.host) && rule.host === address) return classifyAddress(address) === 'public';
  return classifyAddress(address) === 'public';
}

/** The names both patterns match, as one pattern (exact or `*.suffix`); undefined when none. */
function intersectHost(a: string, b: string): string | undefined {
  if (a === b) return a;
  const wildA = a.startsWith('*.');
  const wildB = b.startsWith('*.');
  if (!wildA && wildB && !isIP(a) && hostMatches(b, a)) return a;
  if (wildA && !wildB && !isIP(b) && hostMatches(a, b)) return b;
  if (wildA && wildB) {
    if (a.endsWith(b.slice(1))) return a;
    if (b.endsWith(a.slice(1))) return b;
  }
  return undefined;
}

/** What `base` allows that `by` allows too: scheme, name, ports, methods, path prefixes; undefined when nothing. */
function intersectRule(base: EgressRule, by: EgressRule): EgressRule | undefined {
  if ((base.scheme ?? 'https') !== (by.scheme ?? 'https')) return undefined;
  const host = intersectHost(base.host, by.host);
  if (!host) return undefined;
  const ports = portsOf(base).filter((p) => portsOf(by).includes(p));
  if (ports.length === 0) return undefined;
  let methods = base.methods?.length ? base.methods : by.methods;
  if (base.methods?.length && by.methods?.length) {
    methods = base.methods.filter((m) => by.methods!.includes(m));
    if (methods.length === 0) return undefined;
  }
  let pathPrefixes = base.pathPrefixes?.length ? base.pathPrefixes : by.pathPrefixes;
  if (base.pathPrefixes?.length && by.pathPrefixes?.length) {
    pathPrefixes = [...new Set(base.pathPrefixes.flatMap((a) => by.pathPrefixes!.flatMap((b) => (a.startsWith(b) ? [a] : b.startsWith(a) ? [b] : []))))];
    if (pathPrefixes.length === 0) return undefined;
  }
  const narrowed: EgressRule = { ...base, id: `${base.id}/${by.id}`, host, ports };
  if (methods?.length) narrowed.methods = methods;
  if (pathPrefixes?.length) narrowed.pathPrefixes = pathPrefixes;
  if (by.intercept) narrowed.intercept = true;
  if (!by.websocket) delete narrowed.websocket;
  return narrowed;
}

/**
 * The rules narrowed by a rule set of a narrower scope (pure): what a rule of `base` and a
 * rule of `by` both allow (the name both match, the common ports, methods and path
 * prefixes, WebSocket upgrades only where both allow them), with the base rule's addresses, CA and injection (a narrowing rule adds no
 * reach and no credential). Ids are `<base>/<narrowing>`. No narrowing set: the base as
 * it is; an empty one: nothing.
 */
export function narrowRules(base: readonly EgressRule[], by: readonly EgressRule[] | undefined): EgressRule[] {
  if (!by) return [...base];
  return base.flatMap((b) => by.flatMap((n) => intersectRule(b, n) ?? []));
}
