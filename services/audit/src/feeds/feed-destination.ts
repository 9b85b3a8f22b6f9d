import { BlockList, isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';

/**
 * Where a SIEM feed may not deliver unless the operator allows it
 * (`AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS`): the audit host itself (loopback),
 * link-local addresses (cloud metadata services live there) and unspecified addresses.
 * A tenant admin must not turn the audit service into a client of the host's own
 * services. Checked when a feed is created (literal addresses, `localhost`) and again on
 * every connection, on the addresses a host name resolves to.
 */
const blocked = new BlockList();
blocked.addSubnet('127.0.0.0', 8, 'ipv4');
blocked.addSubnet('169.254.0.0', 16, 'ipv4');
blocked.addSubnet('0.0.0.0', 8, 'ipv4');
blocked.addAddress('::1', 'ipv6');
blocked.addAddress('::', 'ipv6');
blocked.addSubnet('fe80::', 10, 'ipv6');

/** Why an IP address is refused as a feed destination, or undefined. Pure. */
export function blockedAddressProblem(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  const v4 = family === 4 ? bare : mapped?.[1];
  const hit = v4 !== undefined ? blocked.check(v4, 'ipv4') : blocked.check(bare, 'ipv6');
  return hit ? `${bare} is a loopback, link-local or unspecified address` : undefined;
}

/** Why a host (name or address) is refused before any lookup, or undefined. Pure. */
export function blockedHostProblem(host: string): string | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return `${host} names the audit host itself`;
  return blockedAddressProblem(h);
}

/**
 * A DNS lookup for HTTPS/TLS connections that refuses blocked addresses (a name that
 * resolves to loopback or link-local, e.g. through DNS rebinding), unless allowed.
 */
export function guardedLookup(allowInternal: boolean): LookupFunction | undefined {
  if (allowInternal) return undefined;
  return ((hostname: string, options: object, callback: (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as Array<{ address: string; family: number }>;
      const refused = list.map((a) => blockedAddressProblem(a.address)).find((p) => p !== undefined);
      if (refused) return callback(Object.assign(new Error(`feed destination refused: ${refused}`), { code: 'EDESTINATION' }), '', 0);
      if ((options as { all?: boolean }).all) return callback(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  }) as LookupFunction;
}
