import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { PalisadeError } from '@palisade/contracts';

const run = promisify(execFile);
const HOST_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

/** Where a sandbox's namespace reaches its proxy: the host end of its veth pair. */
export interface SandboxLink {
  /** `/run/netns/<name>`: the execution's config joins it (`linux.namespaces[network].path`). */
  netnsPath: string;
  netns: string;
  /** The host end of the /30: the proxy listens here, and only here is reachable from inside. */
  hostAddress: string;
  sandboxAddress: string;
  hostInterface: string;
}

/** The ports of the host end a sandbox may reach: the proxy's, the transparent HTTP and TLS ones, and DNS (UDP and TCP 53, its resolver). */
export interface SandboxPorts {
  proxy: number;
  /** Direct HTTP and TLS to the proxy's address (0: none). */
  transparent: number[];
}

export const DNS_PORT = 53;

/**
 * The nftables ruleset of a sandbox's namespace (pure): loopback; TCP to the proxy's
 * address on the proxy port, the transparent ports and 53; UDP to it on 53 (the sandbox's
 * resolver); everything else (other ports of the host end, other UDP, ICMP, IPv6)
 * dropped. The namespace has no default route either, so this is the second lock.
 */
export function sandboxRuleset(hostAddress: string, ports: SandboxPorts): string {
  const tcp = [...new Set([ports.proxy, ...ports.transparent.filter((p) => p > 0), DNS_PORT])].sort((a, b) => a - b).join(', ');
  return [
    'table inet palisade_egress {',
    '  chain output {',
    '    type filter hook output priority 0; policy drop;',
    '    oif "lo" accept',
    `    ip daddr ${hostAddress} tcp dport { ${tcp} } accept`,
    `    ip daddr ${hostAddress} udp dport ${DNS_PORT} accept`,
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy drop;',
    '    iif "lo" accept',
    `    ip saddr ${hostAddress} tcp sport { ${tcp} } ct state established accept`,
    `    ip saddr ${hostAddress} udp sport ${DNS_PORT} ct state established accept`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy drop;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The i-th /30 of the instance's /16 (`10.<octet>.0.0/16`): host end .1, sandbox end .2. */
export function linkAddresses(octet: number, index: number): { hostAddress: string; sandboxAddress: string } {
  if (index < 0 || index >= 16384) throw new PalisadeError('unavailable', 'no sandbox network address left on this host');
  const third = index >> 6;
  const fourth = (index & 63) * 4;
  return { hostAddress: `10.${octet}.${third}.${fourth + 1}`, sandboxAddress: `10.${octet}.${third}.${fourth + 2}` };
}

/** The instance's second octet, 10.64–10.127, from its name (two instances on a host rarely share one; addresses in use are skipped anyway). */
export function instanceOctet(instance: string): number {
  return 64 + (createHash('sha256').update(instance).digest()[0]! % 64);
}

/** The names of a network, from its id: the namespace (`psbx-<instance>-net-<id>`) and the veth's host end (at most 15 characters). */
function networkNames(instance: string, id: string): { netns: string; hostInterface: string } {
  const hash = createHash('sha256').update(`${instance}/${id}`).digest('hex');
  return { netns: `psbx-${instance}-net-${id}`, hostInterface: `psx${hash.slice(0, 12)}` };
}

const NETWORK_ID = /^[0-9a-f]{12}$/;
/** Before the pool, a network was named by its sandbox (`psbx-<instance>-<sandbox id>`): still found and removed. */
const SANDBOX_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Sandbox networks: a network namespace (`ip netns`) with loopback and one veth whose host
 * end holds a /30 address where the proxy listens; nftables inside drops everything but
 * that address and its ports. Made with `ip` and `nft` as root (the orchestrator's user);
 * the sandbox's programs run in a user namespace without capabilities, so they cannot
 * change the namespace's routes or rules.
 *
 * A network is named by a random id, not by a sandbox: it can be made ahead (the pool)
 * and given to the next sandbox. Every name carries the instance
 * (`psbx-<instance>-net-<id>`), so a restart after a crash finds all of this instance's
 * networks, given to a sandbox or still waiting, and removes them (`reconcile`).
 */
export class SandboxNetwork {
  private readonly prefix: string;
  private readonly octet: number;
  /** The /30 index of each network of this process, by namespace name. */
  private readonly used = new Map<string, number>();

  constructor(
    private readonly instance: string,
    private readonly ports: SandboxPorts,
  ) {
    this.prefix = `psbx-${instance}-net-`;
    this.octet = instanceOctet(instance);
  }

  async check(): Promise<void> {
    for (const [bin, args] of [['ip', ['-V']], ['nft', ['--version']]] as const) {
      try {
        await run(bin, [...args], { env: HOST_ENV });
      } catch {
        throw new PalisadeError('unavailable', `${bin} is missing (the sandbox network needs iproute2 and nftables): run deploy/local/sandbox.sh up`);
      }
    }
  }

  /** Makes a new network (namespace, veth pair, addresses, nftables loaded), for one sandbox. */
  async create(): Promise<SandboxLink> {
    const { netns, hostInterface } = networkNames(this.instance, randomBytes(6).toString('hex'));
    const index = await this.allocate(netns);
    const { hostAddress, sandboxAddress } = linkAddresses(this.octet, index);
    try {
      // two `ip -batch` runs and one `nft`: three processes instead of eight
      await pipeTo('ip', ['-batch', '-'], [`netns add ${netns}`, `link add ${hostInterface} type veth peer name eth0 netns ${netns}`, `addr add ${hostAddress}/30 dev ${hostInterface}`, `link set ${hostInterface} up`, ''].join('\n'));
      await pipeTo('ip', ['-n', netns, '-batch', '-'], [`addr add ${sandboxAddress}/30 dev eth0`, 'link set eth0 up', 'link set lo up', ''].join('\n'));
      await nftIn(netns, sandboxRuleset(hostAddress, this.ports));
    } catch (error) {
      await this.remove(netns);
      throw new PalisadeError('unavailable', `could not prepare the sandbox network: ${(error as Error).message.split('\n')[0]}`);
    }
    return { netnsPath: `/run/netns/${netns}`, netns, hostAddress, sandboxAddress, hostInterface };
  }

  /** The id a namespace name of this instance carries (its veth's name derives from it); undefined: not ours. */
  private idOf(netns: string): string | undefined {
    if (netns.startsWith(this.prefix) && NETWORK_ID.test(netns.slice(this.prefix.length))) return netns.slice(this.prefix.length);
    const legacy = `psbx-${this.instance}-`;
    return netns.startsWith(legacy) && SANDBOX_ID.test(netns.slice(legacy.length)) ? netns.slice(legacy.length) : undefined;
  }

  /** Removes a network by its namespace's name (its veth pair goes with it). Idempotent. */
  async remove(netns: string): Promise<void> {
    const id = this.idOf(netns);
    if (id === undefined) return;
    const { hostInterface } = networkNames(this.instance, id);
    // the veth pair goes with the namespace; a host end left alone (a crash between the two) is removed by itself
    if (existsSync(`/run/netns/${netns}`)) await run('ip', ['netns', 'del', netns], { env: HOST_ENV }).catch(() => undefined);
    if (existsSync(`/sys/class/net/${hostInterface}`)) await run('ip', ['link', 'del', hostInterface], { env: HOST_ENV }).catch(() => undefined);
    this.used.delete(netns);
  }

  /** This instance's networks on the host (namespace names), whoever made them. */
  async list(): Promise<string[]> {
    const { stdout } = await run('ip', ['netns', 'list'], { env: HOST_ENV });
    return stdout
      .split('\n')
      .map((line) => line.trim().split(' ')[0] ?? '')
      .filter((name) => this.idOf(name) !== undefined);
  }

  /**
   * Removes this instance's networks this process did not make (or made and removed):
   * after a crash, all of the dead process's, served or waiting in its pool. Returns the
   * names removed.
   */
  async reconcile(): Promise<string[]> {
    const removed: string[] = [];
    for (const netns of await this.list()) {
      if (this.used.has(netns)) continue;
      await this.remove(netns);
      removed.push(netns);
    }
    return removed;
  }

  /** The lowest /30 index neither ours nor on any interface of the host. */
  private async allocate(netns: string): Promise<number> {
    const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show'], { env: HOST_ENV });
    const taken = new Set(this.used.values());
    for (let index = 0; index < 16384; index++) {
      if (taken.has(index)) continue;
      const { hostAddress } = linkAddresses(this.octet, index);
      if (stdout.includes(` ${hostAddress}/`)) continue;
      this.used.set(netns, index);
      return index;
    }
    throw new PalisadeError('unavailable', 'no sandbox network address left on this host');
  }
}

function nftIn(netns: string, ruleset: string): Promise<void> {
  return pipeTo('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], ruleset);
}

function pipeTo(bin: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: HOST_ENV, stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${args.at(-2) === '-f' ? 'nft' : bin}: ${err.trim()}`))));
    child.stdin.end(input);
  });
}
