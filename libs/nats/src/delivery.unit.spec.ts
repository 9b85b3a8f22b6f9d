// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parseInfo } = require('nats/lib/jetstream/jsmsg') as { parseInfo(reply: string): { deliveryCount: number; streamSequence: number } };
import { deliveryOf } from './delivery';

describe('deliveryOf', () => {
  const forms = [
    // old form, as nats-server 2.10 sends it without a domain
    '$JS.ACK.PALISADE_EVENTS.audit-log.1.42.40.1733365200000000000.7',
    '$JS.ACK.PALISADE_EVENTS.audit-log.3.9007199254740.12.1733365200000000000.0',
    // new form: domain, account hash, then a random token
    '$JS.ACK._.ABCDEF.PALISADE_EVENTS.audit-log.2.1234567.99.1733365200000000000.5.xyz',
    '$JS.ACK.hub.ABCDEF.PALISADE_EVENTS.audit-log.1.1.1.1733365200000000000.0',
    // eleven tokens (no random token)
    '$JS.ACK.hub.ABCDEF.S.c.17.18.19.1733365200000000000.0',
  ];

  it.each(forms)('reads what the client reads from %s', (reply) => {
    const info = parseInfo(reply);
    expect(deliveryOf(reply)).toEqual({ deliveryCount: info.deliveryCount, streamSequence: info.streamSequence });
  });

  it('tells a redelivery from a first delivery', () => {
    expect(deliveryOf('$JS.ACK.S.c.1.10.10.0.0')?.deliveryCount).toBe(1);
    expect(deliveryOf('$JS.ACK.S.c.4.10.13.0.0')?.deliveryCount).toBe(4);
  });

  it.each([
    ['not a JetStream reply', '_INBOX.abc.def'],
    ['an empty reply', ''],
    ['ten tokens', '$JS.ACK.S.c.1.2.3.4.5.6'],
    ['eight tokens', '$JS.ACK.S.c.1.2.3.4'],
    ['a count that is not a number', '$JS.ACK.S.c.x.2.3.4.5'],
    ['an empty sequence', '$JS.ACK.S.c.1..3.4.5'],
    ['a signed sequence', '$JS.ACK.S.c.1.-2.3.4.5'],
    ['a zero count (deliveries count from 1)', '$JS.ACK.S.c.0.2.3.4.5'],
    ['a zero sequence', '$JS.ACK.S.c.1.0.3.4.5'],
  ])('leaves %s to the client (undefined)', (_name, reply) => {
    expect(deliveryOf(reply)).toBeUndefined();
  });
});
