import { createCipheriv, createDecipheriv, generateKeyPairSync, privateDecrypt, constants, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Local endpoints that speak the real AWS JSON 1.1 wire protocol (POST /, X-Amz-Target
 * `<prefix>.<Operation>`, blobs in base64, errors as `{"__type": ..., "message": ...}`),
 * so the real @aws-sdk clients are tested end to end against them: AWS itself cannot be
 * reached from here. They do not check SigV4 signatures, but they record that every
 * request carried one.
 */
type Handler = (body: Record<string, unknown>) => Record<string, unknown>;

class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AwsEndpoint {
  url: string;
  /** Operations in the order they were called. */
  calls: string[];
  unsignedRequests: number;
  close(): Promise<void>;
}

async function serve(prefix: string, handlers: Record<string, Handler>): Promise<AwsEndpoint & { server: Server }> {
  const calls: string[] = [];
  const state = { unsigned: 0 };
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith(`${prefix}.`) ? target.slice(prefix.length + 1) : '';
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) state.unsigned++;
      calls.push(op);
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      const handler = handlers[op];
      if (!handler) return reply(400, { __type: 'UnknownOperationException', message: `unknown operation ${target}` });
      try {
        reply(200, handler(raw ? JSON.parse(raw) : {}));
      } catch (error) {
        if (error instanceof AwsError) return reply(400, { __type: error.type, message: error.message });
        reply(500, { __type: 'InternalFailure', message: String(error) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    calls,
    get unsignedRequests() {
      return state.unsigned;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface KmsKey {
  arn: string;
  material?: Buffer;
  enabled: boolean;
  state: 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport';
  origin: 'AWS_KMS' | 'EXTERNAL';
  importKey?: { privateKey: import('node:crypto').KeyObject; token: string };
}

function contextAad(ctx: unknown): Buffer {
  const map = (ctx ?? {}) as Record<string, string>;
  return Buffer.from(JSON.stringify(Object.keys(map).sort().map((k) => [k, map[k]])));
}

export interface KmsEndpoint extends AwsEndpoint {
  /** The key owner's own actions in their account (BYOK by reference). */
  disableKey(arn: string): void;
  createKey(): string;
}

/** KMS (TrentService): keys, Encrypt/Decrypt with encryption context, import, disable, deletion. */
export async function startKmsEndpoint(): Promise<KmsEndpoint> {
  const keys = new Map<string, KmsKey>();
  const region = 'eu-central-1';
  const account = '111122223333';
  const find = (id: unknown): KmsKey => {
    const key = keys.get(String(id)) ?? [...keys.values()].find((k) => k.arn.endsWith(`/${String(id)}`));
    if (!key) throw new AwsError('NotFoundException', `Key '${String(id)}' does not exist`);
    return key;
  };
  const usable = (key: KmsKey) => {
    if (key.state === 'Disabled') throw new AwsError('DisabledException', `${key.arn} is disabled.`);
    if (key.state !== 'Enabled' || !key.material) throw new AwsError('KMSInvalidStateException', `${key.arn} is ${key.state}.`);
    return key.material;
  };
  const create = (origin: KmsKey['origin']) => {
    const arn = `arn:aws:kms:${region}:${account}:key/${randomUUID()}`;
    keys.set(arn, {
      arn,
      origin,
      enabled: origin === 'AWS_KMS',
      state: origin === 'AWS_KMS' ? 'Enabled' : 'PendingImport',
      material: origin === 'AWS_KMS' ? randomBytes(32) : undefined,
    });
    return arn;
  };
  const metadata = (k: KmsKey) => ({
    KeyId: k.arn.split('/')[1],
    Arn: k.arn,
    Enabled: k.state === 'Enabled',
    KeyState: k.state,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    Origin: k.origin,
  });
  const endpoint = await serve('TrentService', {
    CreateKey: (b) => ({ KeyMetadata: metadata(keys.get(create(b.Origin === 'EXTERNAL' ? 'EXTERNAL' : 'AWS_KMS'))!) }),
    DescribeKey: (b) => ({ KeyMetadata: metadata(find(b.KeyId)) }),
    Encrypt: (b) => {
      const key = find(b.KeyId);
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', usable(key), iv);
      c.setAAD(contextAad(b.EncryptionContext));
      const ct = Buffer.concat([c.update(Buffer.from(String(b.Plaintext), 'base64')), c.final()]);
      const arn = Buffer.from(key.arn);
      const blob = Buffer.concat([Buffer.from([arn.length]), arn, iv, c.getAuthTag(), ct]);
      return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    Decrypt: (b) => {
      const blob = Buffer.from(String(b.CiphertextBlob), 'base64');
      const arn = blob.subarray(1, 1 + blob[0]).toString();
      const key = find(arn);
      if (b.KeyId && find(b.KeyId) !== key) throw new AwsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext.');
      const material = usable(key);
      const rest = blob.subarray(1 + blob[0]);
      try {
        const d = createDecipheriv('aes-256-gcm', material, rest.subarray(0, 12));
        d.setAAD(contextAad(b.EncryptionContext));
        d.setAuthTag(rest.subarray(12, 28));
        const pt = Buffer.concat([d.update(rest.subarray(28)), d.final()]);
        return { Plaintext: pt.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      } catch {
        throw new AwsError('InvalidCiphertextException', '');
      }
    },
    GetParametersForImport: (b) => {
      const key = find(b.KeyId);
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      key.importKey = { privateKey, token: randomBytes(32).toString('base64') };
      return {
        KeyId: key.arn,
        ImportToken: key.importKey.token,
        PublicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      };
    },
    ImportKeyMaterial: (b) => {
      const key = find(b.KeyId);
      if (!key.importKey || Buffer.from(String(b.ImportToken), 'base64').toString('base64') !== key.importKey.token) {
        throw new AwsError('InvalidImportTokenException', 'bad import token');
      }
      key.material = privateDecrypt(
        { key: key.importKey.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        Buffer.from(String(b.EncryptedKeyMaterial), 'base64'),
      );
      key.state = 'Enabled';
      return {};
    },
    DeleteImportedKeyMaterial: (b) => {
      const key = find(b.KeyId);
      key.material?.fill(0);
      key.material = undefined;
      key.state = 'PendingImport';
      return {};
    },
    DisableKey: (b) => {
      const key = find(b.KeyId);
      if (key.state === 'Enabled') key.state = 'Disabled';
      return {};
    },
    ScheduleKeyDeletion: (b) => {
      const key = find(b.KeyId);
      key.state = 'PendingDeletion';
      return { KeyId: key.arn, KeyState: key.state, PendingWindowInDays: b.PendingWindowInDays ?? 30 };
    },
  });
  return {
    ...endpoint,
    get unsignedRequests() {
      return endpoint.unsignedRequests;
    },
    disableKey: (arn) => {
      find(arn).state = 'Disabled';
    },
    createKey: () => create('AWS_KMS'),
  };
}

export interface SecretsManagerEndpoint extends AwsEndpoint {
  /** Every value ever written, including deleted ones (what a provider-side copy could hold). */
  stored(): Map<string, string>;
}

/** Secrets Manager: create, put, get, delete (ForceDeleteWithoutRecovery). */
export async function startSecretsManagerEndpoint(): Promise<SecretsManagerEndpoint> {
  const secrets = new Map<string, { arn: string; versions: Array<{ id: string; value: string }>; deleted: boolean }>();
  const find = (id: unknown) => {
    const s = secrets.get(String(id)) ?? [...secrets.values()].find((x) => x.arn === id);
    if (!s || s.deleted) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return s;
  };
  const endpoint = await serve('secretsmanager', {
    CreateSecret: (b) => {
      const name = String(b.Name);
      if (secrets.has(name) && !secrets.get(name)!.deleted) throw new AwsError('ResourceExistsException', `The secret ${name} already exists.`);
      const arn = `arn:aws:secretsmanager:eu-central-1:111122223333:secret:${name}-${randomBytes(3).toString('hex')}`;
      const versionId = String(b.ClientRequestToken ?? randomUUID());
      secrets.set(name, { arn, deleted: false, versions: [{ id: versionId, value: String(b.SecretString) }] });
      return { ARN: arn, Name: name, VersionId: versionId };
    },
    GetSecretValue: (b) => {
      const s = find(b.SecretId);
      const v = s.versions[s.versions.length - 1];
      return { ARN: s.arn, Name: String(b.SecretId), VersionId: v.id, SecretString: v.value, VersionStages: ['AWSCURRENT'] };
    },
    DeleteSecret: (b) => {
      const s = find(b.SecretId);
      if (b.ForceDeleteWithoutRecovery !== true) throw new AwsError('InvalidRequestException', 'expected ForceDeleteWithoutRecovery');
      s.deleted = true;
      return { ARN: s.arn, Name: String(b.SecretId), DeletionDate: Date.now() / 1000 };
    },
  });
  return {
    ...endpoint,
    get unsignedRequests() {
      return endpoint.unsignedRequests;
    },
    stored: () => new Map([...secrets.entries()].flatMap(([name, s]) => s.versions.map((v) => [`${name}@${v.id}`, v.value] as [string, string]))),
  };
}
