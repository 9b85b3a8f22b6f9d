import type { Principal } from '@palisade/contracts';
import { blockedAddressProblem, blockedHostProblem, guardedLookup } from './feed-destination';
import { hecOutcome } from './feed-policy';
import { requireBacklogRead } from './feeds.access';

describe('SIEM feed destinations', () => {
  it.each(['127.0.0.1', '127.1.2.3', '169.254.169.254', '0.0.0.0', '::1', '[::1]', '::', 'fe80::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', 'localhost', 'LOCALHOST.', 'siem.localhost'])(
    'refuses %s (loopback, link-local, unspecified)',
    (host) => {
      expect(blockedHostProblem(host)).toEqual(expect.any(String));
    },
  );

  it.each(['siem.example.com', '192.0.2.10', '10.1.2.3', '2001:db8::1', '::ffff:192.0.2.1'])('allows %s', (host) => {
    expect(blockedHostProblem(host)).toBeUndefined();
    expect(blockedAddressProblem(host)).toBeUndefined();
  });

  it('refuses a name that resolves to loopback at connection time unless the operator allows internal destinations', async () => {
    const lookup = guardedLookup(false)!;
    const err = await new Promise<Error | null>((resolve) => lookup('localhost', {}, (e) => resolve(e)));
    expect(err?.message).toMatch(/feed destination refused/);
    expect(guardedLookup(true)).toBeUndefined();
  });

  it("echoes nothing of a SIEM's answer body in a delivery error", () => {
    const secretish = 'internal host db-7.corp, token abc123, stack at /srv/splunk';
    for (const [status, body] of [[503, JSON.stringify({ text: secretish, code: 9 })], [401, JSON.stringify({ text: secretish, code: 4 })], [502, `<html>${secretish}</html>`], [400, JSON.stringify({ text: secretish, code: '<b>x</b>' })]] as const) {
      const outcome = hecOutcome(status, body, undefined, 0);
      expect(outcome.ok).toBe(false);
      expect(JSON.stringify(outcome)).not.toMatch(/db-7|abc123|splunk|html|<b>/);
    }
  });
});

describe('creating a feed that starts from the beginning is reading the log', () => {
  const principal = (scopes: string[], tenantId = 'acme'): Principal => ({ type: 'user', id: 'u1', tenantId, scopes });
  it("needs audit:read for one's own tenant (or audit:read:all) besides audit:admin; start at the end needs audit:admin only", () => {
    expect(() => requireBacklogRead(principal(['audit:admin']), 'acme', 'beginning')).toThrow(expect.objectContaining({ code: 'forbidden', message: expect.stringContaining('audit:read') }));
    expect(() => requireBacklogRead(principal(['audit:admin']), 'acme', 'end')).not.toThrow();
    expect(() => requireBacklogRead(principal(['audit:admin', 'audit:read']), 'acme', 'beginning')).not.toThrow();
    expect(() => requireBacklogRead(principal(['audit:admin', 'audit:read'], 'system'), 'acme', 'beginning')).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(() => requireBacklogRead(principal(['audit:admin', 'audit:read:all'], 'system'), 'acme', 'beginning')).not.toThrow();
  });
});
