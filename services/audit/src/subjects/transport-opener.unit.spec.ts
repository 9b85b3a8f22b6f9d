import { randomBytes } from 'node:crypto';
import { buildEvent, newEventId, type EventEnvelope, type Personal } from '@palisade/contracts';
import * as nats from '@palisade/nats';
import { generateTransportKeyPair, transportKeyId, TransportSealingEpoch } from '@palisade/nats';
import { MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH, TransportOpener } from './transport-opener';

jest.mock('@palisade/nats', () => {
  const actual = jest.requireActual('@palisade/nats');
  return { ...actual, transportEpochKey: jest.fn(actual.transportEpochKey) };
});
const decapsulations = nats.transportEpochKey as jest.MockedFunction<typeof nats.transportEpochKey>;

const ctx = { source: 'llm-router' as const, now: () => new Date(), newId: () => newEventId() };
const modelCalled = (subjectId: string): EventEnvelope =>
  buildEvent(ctx, { type: 'llm-router.model.called', tenantId: 't1', actor: { type: 'user', id: subjectId }, data: {}, personal: { subjectId, data: { prompt: 'hello' } } });

async function setUp() {
  const pair = await generateTransportKeyPair();
  const kid = transportKeyId(pair.publicKey);
  const privateKeys = new Map([[kid, pair.privateKey]]);
  const asked: string[] = [];
  const opener = new TransportOpener({
    privateKey: async (k: string) => {
      asked.push(k);
      return privateKeys.get(k);
    },
  });
  const epoch = await TransportSealingEpoch.start(kid, pair.publicKey, Date.now());
  const sealed = (e: EventEnvelope, by: TransportSealingEpoch = epoch): EventEnvelope => ({ ...e, personal: by.seal(e, e.personal as Personal) });
  const members = (events: EventEnvelope[]) => events.map((event, index) => ({ index, event }));
  return { pair, kid, privateKeys, asked, opener, epoch, sealed, members };
}
/** A well-formed member naming a key audit does not have. */
async function unknownKidMember(): Promise<EventEnvelope> {
  const pair = await generateTransportKeyPair();
  const epoch = await TransportSealingEpoch.start(transportKeyId(pair.publicKey), pair.publicKey, Date.now());
  const e = modelCalled('u-1');
  return { ...e, personal: epoch.seal(e, e.personal as Personal) };
}

beforeEach(() => decapsulations.mockClear());

describe('TransportOpener: destroyed transport keys', () => {
  it('stops opening members of a kid once its private key is destroyed, though their epoch key was cached, and drops those epoch keys', async () => {
    const { opener, privateKeys, kid, sealed, members } = await setUp();
    const first = await opener.openAll(members([sealed(modelCalled('u-1'))]));
    expect(first.opened.size).toBe(1);
    expect(opener.cachedEpochs).toBe(1);
    privateKeys.delete(kid); // destroyed (TransportKeys answers none once its ~30 s cache has passed)
    const after = await opener.openAll(members([sealed(modelCalled('u-1'))]));
    expect(after.opened.size).toBe(0);
    expect(after.problems.get(0)).toEqual([expect.stringMatching(/no such audit transport key/)]);
    expect(opener.cachedEpochs).toBe(0);
  });
});

describe('TransportOpener: forged members cost little', () => {
  it('looks each distinct kid up once per batch and decapsulates each distinct (kid, enc) once', async () => {
    const { opener, asked, sealed, members, pair, kid } = await setUp();
    const other = await TransportSealingEpoch.start(kid, pair.publicKey, Date.now());
    const unknown = await unknownKidMember();
    const good = [sealed(modelCalled('a')), sealed(modelCalled('b')), sealed(modelCalled('c'), other)];
    // a forger's random enc, repeated: decapsulated once
    const forgedEnc = Array.from({ length: 20 }, () => {
      const e = sealed(modelCalled('x'));
      return { ...e, personal: { ...(e.personal as object), enc: randomBytes(32).toString('base64url') } } as EventEnvelope;
    }).map((e, i, all) => ({ ...e, personal: { ...(e.personal as object), enc: (all[0].personal as { enc: string }).enc } }) as EventEnvelope);
    const unknownRepeated = Array.from({ length: 20 }, () => ({ ...modelCalled('y'), personal: unknown.personal }) as EventEnvelope);
    const result = await opener.openAll(members([...good, ...forgedEnc, ...unknownRepeated]));
    expect(result.opened.size).toBe(3);
    expect(result.problems.size).toBe(40);
    expect(asked).toHaveLength(2); // the real kid and the unknown one, once each
    expect(decapsulations).toHaveBeenCalledTimes(3); // two real epochs, one forged enc
    // the unknown kid is remembered: the next batch does not look it up again
    asked.length = 0;
    await opener.openAll(members(unknownRepeated));
    expect(asked).toHaveLength(0);
  });

  it(`after ${MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH} distinct unknown kids in a batch refuses the rest unasked; a kid known to name a key is still opened`, async () => {
    const { opener, asked, sealed, members, kid } = await setUp();
    await opener.openAll(members([sealed(modelCalled('warm'))])); // the kid is now known
    asked.length = 0;
    const forged = await Promise.all(Array.from({ length: 30 }, () => unknownKidMember()));
    const result = await opener.openAll(members([...forged, sealed(modelCalled('late'))]));
    expect(asked.filter((k) => k !== kid)).toHaveLength(MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH);
    expect(result.problems.size).toBe(30);
    expect([...result.problems.values()].every((p) => /no such audit transport key/.test(p[0]))).toBe(true);
    expect(result.opened.get(30)).toEqual({ subjectId: 'late', data: { prompt: 'hello' } });
  });

  it('past the limit still opens the key served to producers now, though this instance never saw it', async () => {
    const { pair, kid, sealed, members } = await setUp();
    const asked: string[] = [];
    const opener = new TransportOpener({
      privateKey: async (k: string) => (asked.push(k), k === kid ? pair.privateKey : undefined),
      publicKeys: async () => ({ keys: [{ kid, kty: 'OKP', crv: 'X25519', x: pair.publicKey.toString('base64url'), alg: 'HPKE-X25519-SHA256-EXPORT-A256GCM', createdAt: new Date().toISOString(), notAfter: new Date(Date.now() + 3600_000).toISOString() }] }),
    });
    const forged = await Promise.all(Array.from({ length: 12 }, () => unknownKidMember()));
    const result = await opener.openAll(members([...forged, sealed(modelCalled('new-key'))]));
    expect(asked).toHaveLength(MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH + 1);
    expect(result.opened.get(12)).toEqual({ subjectId: 'new-key', data: { prompt: 'hello' } });
  });
});

describe('TransportOpener: what a member is bound to', () => {
  it('does not open a member replayed under another tenant, source or type with the same event id', async () => {
    const { opener, sealed, members } = await setUp();
    const original = sealed(modelCalled('u-1'));
    const replayed: EventEnvelope[] = [
      { ...original, tenantId: 't2' },
      { ...original, source: 'auth' },
      { ...original, type: 'llm-router.model.failed' },
    ];
    const result = await opener.openAll(members([original, ...replayed]));
    expect([...result.opened.keys()]).toEqual([0]);
    expect([1, 2, 3].map((i) => result.problems.get(i))).toEqual([1, 2, 3].map(() => [expect.stringMatching(/does not open under its audit transport key for this event/)]));
  });
});
