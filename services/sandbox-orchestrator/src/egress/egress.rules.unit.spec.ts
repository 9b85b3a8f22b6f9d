import { parse } from '../validation';
import { egressRulesBodySchema, egressScopeSchema } from './egress-rules.dto';
import { addressAllowed, canonicalPath, classifyAddress, decideConnect, decideRequest, hostMatches, narrowRules, normalizeHost, type EgressRule } from './egress.rules';

const gerrit: EgressRule = {
  id: 'gerrit-changes',
  host: 'gerrit.acme.internal',
  methods: ['GET'],
  pathPrefixes: ['/a/changes/'],
  inject: { secretId: '00000000-0000-4000-8000-000000000001', tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } },
};
const pypi: EgressRule = { id: 'pypi', host: '*.pythonhosted.org' };
const plain: EgressRule = { id: 'plain', host: 'example.org', scheme: 'http', ports: [80, 8080] };
const rules = [gerrit, pypi, plain];
const https = (host: string, port = 443) => ({ scheme: 'https' as const, host, port });

describe('egress rules', () => {
  it('deny by default: no rule, another host, another port, another scheme', () => {
    expect(decideConnect([], https('gerrit.acme.internal'))).toMatchObject({ allow: false, rule: 'default-deny' });
    expect(decideConnect(rules, https('exfil.example'))).toMatchObject({ allow: false, rule: 'default-deny' });
    expect(decideConnect(rules, https('gerrit.acme.internal', 8443))).toMatchObject({ allow: false });
    expect(decideConnect(rules, { scheme: 'http', host: 'gerrit.acme.internal', port: 443 })).toMatchObject({ allow: false });
    expect(decideConnect(rules, https('example.org', 80))).toMatchObject({ allow: false });
  });

  it('exact and wildcard names (the wildcard never matches its suffix itself, nor a look-alike)', () => {
    expect(hostMatches('*.pythonhosted.org', 'files.pythonhosted.org')).toBe(true);
    expect(hostMatches('*.pythonhosted.org', 'a.b.pythonhosted.org')).toBe(true);
    expect(hostMatches('*.pythonhosted.org', 'pythonhosted.org')).toBe(false);
    expect(hostMatches('*.pythonhosted.org', 'evilpythonhosted.org')).toBe(false);
    expect(hostMatches('gerrit.acme.internal', 'gerrit.acme.internal.evil')).toBe(false);
    expect(decideConnect(rules, https('GERRIT.acme.internal.'))).toMatchObject({ allow: true, mode: 'intercept' });
    expect(decideConnect(rules, https('files.pythonhosted.org'))).toMatchObject({ allow: true, mode: 'splice' });
    expect(normalizeHost('bad host')).toBeUndefined();
    expect(normalizeHost('[::1]')).toBe('::1');
  });

  it('method and path prefix per request; dot segments and encoded slashes refused', () => {
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'GET', '/a/changes/?q=status:open')).toMatchObject({ allow: true, rule: gerrit });
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'POST', '/a/changes/1')).toMatchObject({ allow: false, rule: 'default-deny' });
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'GET', '/a/accounts/self')).toMatchObject({ allow: false });
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'GET', '/a/changes/../accounts')).toMatchObject({ allow: false, reason: 'path not canonical' });
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'GET', '/a/changes/%2e%2e/x')).toMatchObject({ allow: false });
    expect(decideRequest(rules, https('gerrit.acme.internal'), 'GET', '/a/changes%2f..')).toMatchObject({ allow: false });
    expect(canonicalPath('/a/changes/?q=../x')).toBe(true);
    expect(decideRequest(rules, { scheme: 'http', host: 'example.org', port: 8080 }, 'DELETE', '/x')).toMatchObject({ allow: true, rule: plain });
  });

  it('addresses: only public ones, unless the rule names them (loopback, private, link-local, metadata, mapped)', () => {
    for (const [a, c] of [
      ['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['10.1.2.3', 'private'], ['172.20.0.1', 'private'], ['192.168.1.1', 'private'],
      ['100.64.0.1', 'private'], ['169.254.169.254', 'metadata'], ['fd00:ec2::254', 'metadata'], ['169.254.1.1', 'link-local'], ['fe80::1', 'link-local'],
      ['fc00::1', 'private'], ['::ffff:127.0.0.1', 'loopback'], ['0.0.0.0', 'unspecified'], ['224.0.0.1', 'multicast'], ['1.1.1.1', 'public'], ['2606:4700::1111', 'public'],
    ] as const) expect([a, classifyAddress(a)]).toEqual([a, c]);
    expect(addressAllowed(gerrit, '10.0.0.5')).toBe(false);
    expect(addressAllowed(gerrit, '93.184.216.34')).toBe(true);
    expect(addressAllowed({ ...gerrit, addresses: ['10.0.0.5'] }, '10.0.0.5')).toBe(true);
    expect(addressAllowed({ ...gerrit, addresses: ['10.0.0.5'] }, '10.0.0.6')).toBe(false);
    expect(addressAllowed({ id: 'ip', host: '169.254.169.254' }, '169.254.169.254')).toBe(false);
  });
});

describe('narrowing (an agent’s or a session’s rule set)', () => {
  it('keeps what both allow: the name both match, common ports, methods, the longer path prefix; the base rule’s injection', () => {
    const wide: EgressRule = { id: 'acme', host: '*.acme.internal', ports: [443, 8443], addresses: ['10.0.0.5'], inject: gerrit.inject };
    const [n] = narrowRules([wide], [{ id: 'only-gerrit', host: 'gerrit.acme.internal', ports: [443, 9000], methods: ['GET'], pathPrefixes: ['/a/changes/'] }]);
    expect(n).toEqual({ id: 'acme/only-gerrit', host: 'gerrit.acme.internal', ports: [443], methods: ['GET'], pathPrefixes: ['/a/changes/'], addresses: ['10.0.0.5'], inject: gerrit.inject });
    expect(decideRequest([n!], https('gerrit.acme.internal'), 'GET', '/a/changes/1')).toMatchObject({ allow: true });
    expect(decideRequest([n!], https('gerrit.acme.internal'), 'POST', '/a/changes/1')).toMatchObject({ allow: false });
    expect(decideConnect([n!], https('ci.acme.internal'))).toMatchObject({ allow: false });
    expect(narrowRules([gerrit], [{ id: 'deeper', host: 'gerrit.acme.internal', pathPrefixes: ['/a/changes/123'] }])[0]?.pathPrefixes).toEqual(['/a/changes/123']);
    expect(narrowRules([{ id: 'w', host: '*.b.c' }], [{ id: 'ww', host: '*.a.b.c' }])[0]?.host).toBe('*.a.b.c');
  });

  it('never widens: other names, ports, methods or paths give nothing; an empty set denies everything; none narrows nothing', () => {
    expect(narrowRules([gerrit], [{ id: 'x', host: 'other.example' }])).toEqual([]);
    expect(narrowRules([gerrit], [{ id: 'x', host: '*.internal', methods: ['POST'] }])).toEqual([]);
    expect(narrowRules([gerrit], [{ id: 'x', host: '*.acme.internal', pathPrefixes: ['/a/accounts/'] }])).toEqual([]);
    expect(narrowRules([pypi], [{ id: 'x', host: 'pythonhosted.org' }])).toEqual([]); // *.s never matches s itself
    expect(narrowRules([plain], [{ id: 'x', host: 'example.org' }])).toEqual([]); // another scheme
    expect(narrowRules(rules, [])).toEqual([]);
    expect(narrowRules(rules, undefined)).toEqual(rules);
    expect(narrowRules([{ ...pypi, websocket: true }], [{ id: 'x', host: '*.pythonhosted.org' }])[0]?.websocket).toBeUndefined();
  });
});

describe('rule sets (the API’s validation)', () => {
  it('parses rules, lower-cases names, names the bad field', () => {
    expect(parse(egressRulesBodySchema, { rules: [{ id: 'g', host: 'Gerrit.Acme.Test.' }] }).rules[0]!.host).toBe('gerrit.acme.test');
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a b' }] })).toThrow(/rules\.0\.host/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', pathPrefixes: ['nope'] }] })).toThrow(/pathPrefixes/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', ports: [0] }] })).toThrow(/ports/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', methods: ['get'] }] })).toThrow(/methods/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', inject: { secretId: 'nope', tool: 't', as: { type: 'header', name: 'X' } } }] })).toThrow(/secretId/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', inject: { secretId: gerrit.inject!.secretId, tool: 't', as: { type: 'query', name: 'a b' } } }] })).toThrow(/as\.name/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', extra: 1 }] })).toThrow();
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b' }, { id: 'x', host: 'c.d' }] })).toThrow(/unique/);
    expect(() => parse(egressRulesBodySchema, { rules: [{ id: 'x', host: 'a.b', websocket: true, inject: gerrit.inject }] })).toThrow(/rules\.0\.websocket/);
    const query = parse(egressRulesBodySchema, { rules: [{ id: 'ws', host: 'ws.test', websocket: true }, { id: 'q', host: 'api.test', inject: { secretId: gerrit.inject!.secretId, tool: 'api', as: { type: 'query', name: 'api_key' } } }] });
    expect(query.rules).toMatchObject([{ websocket: true }, { inject: { as: { type: 'query', name: 'api_key' } } }]);
  });

  it('scopes: tenant, agent:<id>, session:<uuid>', () => {
    expect(parse(egressScopeSchema, 'tenant')).toBe('tenant');
    expect(parse(egressScopeSchema, 'agent:release-bot')).toBe('agent:release-bot');
    expect(parse(egressScopeSchema, 'session:0190b7e4-1c2d-7a3b-8c4d-5e6f7a8b9c0d')).toBe('session:0190b7e4-1c2d-7a3b-8c4d-5e6f7a8b9c0d');
    for (const bad of ['tenants', 'agent:', 'agent:a b', 'session:x', 'user:alice', '*']) expect(() => parse(egressScopeSchema, bad, 'scope')).toThrow(/scope/);
  });
});
