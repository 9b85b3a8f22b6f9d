import { X509Certificate } from 'node:crypto';
import type { NatsConnection } from 'nats';
import type { IdentityMaterial, ServiceIdentity } from '@palisade/pki';
import { connectAs, connectOnce, eventually, serviceIdentity, sleep } from './helpers';

describe('certificate renewal under a live NATS connection', () => {
  let identity: ServiceIdentity;
  let nc: NatsConnection;

  afterAll(async () => {
    await nc?.close();
    identity?.stop();
  });

  it('keeps the connection through renewals, and reconnects with the new certificate after the old one expired', async () => {
    identity = await serviceIdentity('audit', 3000);
    const first = identity.current();
    nc = await connectAs(identity, 'int-audit');
    const renewals: IdentityMaterial[] = [];
    identity.onRenew((m) => renewals.push(m));

    // Wait until the first certificate has expired (renewed at 2 s, valid for 3 s).
    await sleep(first.notAfter.getTime() - Date.now() + 200);
    expect(renewals.length).toBeGreaterThanOrEqual(1);
    expect(identity.current().certPem).not.toBe(first.certPem);
    expect(new X509Certificate(first.certPem).validToDate.getTime()).toBeLessThan(Date.now());

    // The established connection survives (the server still answers its pings)...
    await nc.flush();
    expect(await nc.rtt()).toBeGreaterThanOrEqual(0);
    // NATS refuses the expired certificate on a new connection.
    await expect(connectOnce({ cert: first.certPem, key: first.keyPem, ca: first.caPem })).rejects.toThrow();

    // ...and a reconnection presents the current certificate: the first one has expired
    // and NATS would refuse it, so a successful reconnect proves the switch.
    const reconnected = (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') return true;
      return false;
    })();
    await nc.reconnect();
    expect(await eventually(() => reconnected, 10_000)).toBe(true);
    await nc.flush();
    expect(nc.isClosed()).toBe(false);
    expect(new X509Certificate(identity.current().certPem).validToDate.getTime()).toBeGreaterThan(Date.now());
  });
});
