import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { EgressDecision } from './egress.audit';
import { DEFAULT_DENY, nameAllowed, normalizeHost, type EgressRule } from './egress.rules';

/** Response codes (RFC 1035 §4.1.1), in the low four bits of the flags. */
const RCODE = { noError: 0, formErr: 1, nxDomain: 3, refused: 5 } as const;
/** Short, so a rule change reaches programs that cache answers soon. */
export const DNS_TTL_SECONDS = 5;
/** The largest DNS message over TCP (two-byte length prefix). */
const MAX_TCP_MESSAGE = 65_535;
const TCP_IDLE_MS = 10_000;

/** A lookup the resolver refused (audited: the name, never anything else). */
export interface DnsRefusal {
  name: string;
  reason: string;
}

export interface DnsAnswer {
  response: Buffer;
  refused?: DnsRefusal;
}

/** A name as recorded: printable, bounded (the name is what a program asked, possibly data it tried to smuggle out). */
function recordedName(name: string): string {
  return name.replace(/[^\x21-\x7e]/g, '?').slice(0, 253);
}

/**
 * The sandbox's resolver (pure): one question of class IN, opcode QUERY. A name some rule
 * allows is answered with `address` (the sandbox's proxy: a program that ignores proxy
 * variables connects there, and the proxy decides by SNI / Host) for A, and with no record
 * for any other type (NOERROR, empty); every other name is NXDOMAIN and reported refused.
 * Nothing is ever forwarded: there is no upstream. Without rules (no context) everything
 * is REFUSED. A message that is not a query gets no answer (undefined).
 */
export function answerDns(query: Buffer, rules: readonly EgressRule[] | undefined, address: string): DnsAnswer | undefined {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  if (packet.type !== 'query') return undefined;
  const question = packet.questions?.[0];
  const reply = (rcode: number, answers: dnsPacket.Answer[] = []): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: packet.id,
      flags: ((packet.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: question ? [question] : [],
      answers,
    });
  if ((packet as { opcode?: string }).opcode !== 'QUERY' || packet.questions?.length !== 1 || !question) {
    return { response: reply(RCODE.formErr) };
  }
  const name = recordedName(question.name);
  if (question.class !== 'IN') return { response: reply(RCODE.refused), refused: { name, reason: `class ${question.class} not served` } };
  if (!rules) return { response: reply(RCODE.refused), refused: { name, reason: 'no egress context for the sandbox' } };
  const host = normalizeHost(question.name);
  if (!host || !nameAllowed(rules, host)) return { response: reply(RCODE.nxDomain), refused: { name, reason: 'no rule allows the name' } };
  if (question.type !== 'A') return { response: reply(RCODE.noError) };
  return { response: reply(RCODE.noError, [{ type: 'A', class: 'IN', name: question.name, ttl: DNS_TTL_SECONDS, data: address }]) };
}

export interface SandboxResolverOptions {
  /** The address answered for allowed names (the sandbox's proxy). */
  address: string;
  /** The sandbox's rules now (asked per query, so a change applies at once); undefined: no context. */
  rules: () => Promise<readonly EgressRule[] | undefined>;
  /** Where refusals go (the sandbox's audit batch). */
  record: (decision: Omit<EgressDecision, 'at'>) => void;
}

/**
 * A sandbox's DNS resolver, on UDP and TCP port 53 of the host end of its link (the only
 * other port its namespace's rules let through besides the proxy's): answers from the
 * sandbox's egress rules, forwards nothing.
 */
export class SandboxResolver {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly o: SandboxResolverOptions) {}

  async listen(host: string, port = 53): Promise<void> {
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    udp.on('message', (message, peer) => {
      void this.handle(message).then((response) => response && udp.send(response, peer.port, peer.address));
    });
    udp.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    const tcp = createServer((socket) => this.serveTcp(socket));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host, port, exclusive: true }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  private async handle(query: Buffer): Promise<Buffer | undefined> {
    const rules = await this.o.rules().catch(() => undefined);
    const answer = answerDns(query, rules, this.o.address);
    if (answer?.refused) this.o.record({ outcome: 'denied', stage: 'dns', host: answer.refused.name, port: 53, rule: DEFAULT_DENY, reason: answer.refused.reason });
    return answer?.response;
  }

  /** DNS over TCP: messages with a two-byte length prefix, answered in order. */
  private serveTcp(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE + 2) return void socket.destroy();
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        queue = queue.then(async () => {
          const response = await this.handle(message);
          if (!response) return void socket.destroy();
          const length = Buffer.alloc(2);
          length.writeUInt16BE(response.length);
          socket.write(Buffer.concat([length, response]));
        });
      }
    });
  }
}
