import * as dnsPacket from 'dns-packet';
import { answerDns } from './egress.dns';
import { nameAllowed, type EgressRule } from './egress.rules';

const RULES: EgressRule[] = [
  { id: 'gerrit', host: 'gerrit.acme.test', ports: [8443] },
  { id: 'pypi', host: '*.pythonhosted.org' },
  { id: 'literal', host: '93.184.216.34' },
];
const PROXY = '10.77.1.5';

function query(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra } as dnsPacket.Packet);
}

function decoded(response: Buffer | undefined) {
  expect(response).toBeDefined();
  return dnsPacket.decode(response!);
}

describe('the sandbox resolver (pure)', () => {
  it('names a rule allows: exact, and below a *.suffix (not the suffix itself, not an IP rule)', () => {
    expect(nameAllowed(RULES, 'gerrit.acme.test')).toBe(true);
    expect(nameAllowed(RULES, 'GERRIT.acme.test.')).toBe(true);
    expect(nameAllowed(RULES, 'files.pythonhosted.org')).toBe(true);
    expect(nameAllowed(RULES, 'pythonhosted.org')).toBe(false);
    expect(nameAllowed(RULES, 'x.gerrit.acme.test')).toBe(false);
    expect(nameAllowed(RULES, '93.184.216.34')).toBe(false);
    expect(nameAllowed([], 'gerrit.acme.test')).toBe(false);
  });

  it('answers an allowed name with the proxy’s address (A), nothing for AAAA, the id and question echoed', () => {
    const a = answerDns(query('Gerrit.Acme.Test'), RULES, PROXY)!;
    expect(a.refused).toBeUndefined();
    const packet = decoded(a.response);
    expect(packet).toMatchObject({ type: 'response', id: 4242, rcode: 'NOERROR', flag_rd: true, questions: [{ name: 'Gerrit.Acme.Test', type: 'A' }] });
    expect(packet.answers).toEqual([expect.objectContaining({ type: 'A', name: 'Gerrit.Acme.Test', data: PROXY, ttl: 5 })]);
    const aaaa = answerDns(query('files.pythonhosted.org', 'AAAA'), RULES, PROXY)!;
    expect(decoded(aaaa.response)).toMatchObject({ rcode: 'NOERROR', answers: [] });
    const txt = answerDns(query('files.pythonhosted.org', 'TXT'), RULES, PROXY)!;
    expect(decoded(txt.response)).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('refuses every other name (NXDOMAIN, reported with the name) and forwards nothing', () => {
    for (const [name, type] of [['c2VjcmV0.attacker.example', 'A'], ['pythonhosted.org', 'A'], ['exfil.example', 'TXT'], ['34.216.184.93.in-addr.arpa', 'PTR']] as const) {
      const a = answerDns(query(name, type), RULES, PROXY)!;
      expect(decoded(a.response)).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });
      expect(a.refused).toEqual({ name, reason: 'no rule allows the name' });
    }
  });

  it('without rules (no context) every lookup is REFUSED; other classes too', () => {
    const a = answerDns(query('gerrit.acme.test'), undefined, PROXY)!;
    expect(decoded(a.response)).toMatchObject({ rcode: 'REFUSED', answers: [] });
    expect(a.refused?.reason).toMatch(/no egress context/);
    const chaos = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'TXT', name: 'version.bind', class: 'CH' }] });
    expect(decoded(answerDns(chaos, RULES, PROXY)!.response)).toMatchObject({ rcode: 'REFUSED' });
  });

  it('no answer to garbage or to responses; FORMERR for several questions', () => {
    expect(answerDns(Buffer.from('not dns'), RULES, PROXY)).toBeUndefined();
    const response = dnsPacket.encode({ type: 'response', id: 3, questions: [{ type: 'A', name: 'gerrit.acme.test' }] });
    expect(answerDns(response, RULES, PROXY)).toBeUndefined();
    const two = dnsPacket.encode({ type: 'query', id: 5, questions: [{ type: 'A', name: 'gerrit.acme.test' }, { type: 'A', name: 'x.example' }] });
    expect(decoded(answerDns(two, RULES, PROXY)!.response)).toMatchObject({ rcode: 'FORMERR', answers: [] });
  });
});
