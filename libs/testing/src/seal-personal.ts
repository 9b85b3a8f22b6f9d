import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { SEAL_PERSONAL_SUBJECT, sealPersonalRequestSchema, type SealedPersonal, type SealPersonalReply } from '@palisade/contracts';
import { connectNats, serveRpc } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { infra } from './infra';

export interface SealPersonalStandIn {
  /** Events sealed so far. */
  readonly sealed: number;
  stop(): Promise<void>;
}

/**
 * Answers SEAL_PERSONAL_SUBJECT as the audit service would (its certificate, its queue group,
 * AES-256-GCM with the event id as associated data, under a key of this run), for end-to-end
 * suites that start auth or llm-router without audit: their writes of personal data fail
 * closed when nobody seals it. The key is thrown away: what it sealed cannot be opened.
 */
export async function startSealPersonalStandIn(): Promise<SealPersonalStandIn> {
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
  const server = serveRpc(nc, {
    service: 'audit',
    handlers: {
      [SEAL_PERSONAL_SUBJECT]: (payload): SealPersonalReply => {
        const { events } = sealPersonalRequestSchema.parse(payload);
        return { sealed: events.map((e) => seal(e.id, e.personal.subjectId, e.personal.data)) };
      },
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
