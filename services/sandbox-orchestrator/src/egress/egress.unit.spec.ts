import { PassThrough } from 'node:stream';
import { EgressAuditBatcher, type EgressBatch } from './egress.audit';
import { Scrubber } from './egress.proxy';
import { sandboxRuleset, linkAddresses } from './sandbox-network';
import { sniOf } from './tls-client-hello';

async function scrubbed(chunks: string[], needles: string[]): Promise<string> {
  const input = new PassThrough();
  const out: Buffer[] = [];
  const s = input.pipe(new Scrubber(needles));
  s.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => s.on('end', r));
  for (const c of chunks) input.write(c);
  input.end();
  await done;
  return Buffer.concat(out).toString();
}

describe('egress pieces', () => {
  it('scrubs a value split across chunks', async () => {
    const text = await scrubbed(['echo: tok', 'en-SECRET', '-123 and token-SECRET-123!'], ['token-SECRET-123']);
    expect(text).not.toContain('SECRET');
    expect(text).toBe('echo: [redacted by palisade] and [redacted by palisade]!');
  });

  it('batches decisions per sandbox, bounded, flushed on close', async () => {
    const batches: EgressBatch[] = [];
    const audit = new EgressAuditBatcher(async (b) => void batches.push(b), { intervalMs: 60_000, maxPerBatch: 2 });
    for (let i = 0; i < 5; i++) audit.record('s1', { at: 'now', outcome: 'denied', stage: 'connect', host: 'x', port: 443, rule: 'default-deny' });
    audit.record('s2', { at: 'now', outcome: 'injected', stage: 'request', host: 'g', port: 443, rule: 'r', secretId: 'id' });
    expect(batches).toHaveLength(0);
    await audit.close();
    expect(batches.map((b) => [b.sandboxId, b.decisions.length, b.dropped])).toEqual([['s1', 2, 3], ['s2', 1, 0]]);
  });

  it('the namespace ruleset allows only the proxy address: its proxy and transparent ports, and DNS (UDP and TCP 53)', () => {
    const { hostAddress, sandboxAddress } = linkAddresses(77, 65);
    expect([hostAddress, sandboxAddress]).toEqual(['10.77.1.5', '10.77.1.6']);
    const r = sandboxRuleset(hostAddress, { proxy: 3128, transparent: [80, 443] });
    expect(r).toContain('policy drop');
    expect(r).toContain('ip daddr 10.77.1.5 tcp dport { 53, 80, 443, 3128 } accept');
    expect(r).toContain('ip daddr 10.77.1.5 udp dport 53 accept');
    expect(r).toContain('ip saddr 10.77.1.5 udp sport 53 ct state established accept');
    expect(r.match(/accept/g)).toHaveLength(6);
    expect(sandboxRuleset(hostAddress, { proxy: 3128, transparent: [0, 0] })).toContain('tcp dport { 53, 3128 } accept');
  });

  it('reads the SNI of a ClientHello, and nothing from other bytes', () => {
    const name = Buffer.from('gerrit.test');
    const sni = Buffer.concat([Buffer.from([0, 0]), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(sni.length), sni]);
    const hs = Buffer.concat([Buffer.from([1, 0]), u16(body.length), body]);
    const record = Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
    expect(sniOf(record)).toBe('gerrit.test');
    expect(sniOf(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeNull();
  });
});

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
