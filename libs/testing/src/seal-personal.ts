import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { SEAL_PERSONAL_SUBJECT, sealPersonalRequestSchema, TRANSPORT_KEYS_SUBJECT, TRANSPORT_SEALING_ALG, type SealedPersonal, type SealPersonalReply, type TransportKeysReply } from '@palisade/contracts';
import { connectNats, generateTransportKeyPair, serveRpc, transportKeyId } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { infra } from './infra';

export interface SealPersonalStandIn {
  /** Events sealed so far. */
  readonly sealed: number;
  stop(): Promise<void>;
}

/**
 * A transport key pair of this run and what TRANSPORT_KEYS_SUBJECT answers for it (valid
 * for a day), as the audit service serves its current key: producers seal to it locally.
 * `privateKey` opens what they sealed (libs/nats transportEpochKey, openTransportSealed).
 */
export async function standInTransportKeys(): Promise<{ reply: TransportKeysReply; privateKey: Buffer }> {
  const pair = await generateTransportKeyPair();
  const now = Date.now();
  return {
    privateKey: pair.privateKey,
    reply: {
      keys: [
        {
          kid: transportKeyId(pair.publicKey),
          kty: 'OKP',
          crv: 'X25519',
          x: pair.publicKey.toString('base64url'),
          alg: TRANSPORT_SEALING_ALG,
          createdAt: new Date(now).toISOString(),
          notAfter: new Date(now + 86_400_000).toISOString(),
        },
      ],
    },
  };
}

/**
 * Answers SEAL_PERSONAL_SUBJECT as the audit service would (its certificate, its queue group,
 * AES-256-GCM with the event id as associated data, under a key of this run), for end-to-end
 * suites that start auth or llm-router without audit: their writes of personal data fail
 * closed when nobody seals it. With `transportKeys`, it also serves a transport key of this
 * run (TRANSPORT_KEYS_SUBJECT), so producers seal locally, as they do with audit; without,
 * they find no key and use the RPC (a suite that stops the stand-in to see writes fail
 * closed needs that: a producer holding a key keeps sealing with audit away). The keys are
 * thrown away: what it sealed cannot be opened.
 */
export async function startSealPersonalStandIn(options: { transportKeys?: boolean } = {}): Promise<SealPersonalStandIn> {
  const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'audit' });
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: 'test-seal-personal-stand-in' });
  const key = randomBytes(32);
  const keyId = randomUUID();
  let sealed = 0;
  const seal = (eventId: string, subjectId: string, data: unknown): SealedPersonal => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(eventId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
    sealed++;
    return { subjectId, keyId, alg: 'A256GCM', sealed: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64url') };
  };
  const transport = options.transportKeys ? await standInTransportKeys() : undefined;
  const server = serveRpc(nc, {
    service: 'audit',
    handlers: {
      [SEAL_PERSONAL_SUBJECT]: (payload): SealPersonalReply => {
        const { events } = sealPersonalRequestSchema.parse(payload);
        return { sealed: events.map((e) => seal(e.id, e.personal.subjectId, e.personal.data)) };
      },
      ...(transport ? { [TRANSPORT_KEYS_SUBJECT]: (): TransportKeysReply => transport.reply } : {}),
    },
  });
  await nc.flush();
  return {
    get sealed() {
      return sealed;
    },
    async stop() {
      await server.stop();
      await nc.close();
      identity.stop();
    },
  };
}
