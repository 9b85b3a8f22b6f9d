import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Principal } from '@palisade/contracts';
import { bindingContext, open } from '../src/crypto/envelope';
import { AwsKmsKeyProvider } from '../src/keys/aws-kms-key-provider';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { SecretsManagerCiphertextStore } from '../src/storage/ciphertext-store';
import { admin, agent, eventStoreText, softHsm, startVault, type Harness } from './support/harness';
import { startKmsEndpoint, startSecretsManagerEndpoint, type KmsEndpoint, type SecretsManagerEndpoint } from './support/aws-json-endpoint';

const value = (marker: string) => Buffer.from(marker, 'utf8');
const redeemFor = (h: Harness, lease: { token: string; sessionId: string; tool: string }, tenantId: string) =>
  h.leases.redeem('sandbox-orchestrator', { token: lease.token, tenantId, sessionId: lease.sessionId, tool: lease.tool });

async function lease(h: Harness, p: Principal, secretId: string, extra: { ttlSeconds?: number; uses?: number; tool?: string } = {}) {
  return h.leases.grant(p, { secretId, sessionId: 'sess-1', tool: extra.tool ?? 'gerrit', ...extra });
}

describe('vault over PostgreSQL with the local key provider', () => {
  let h: Harness;
  beforeAll(async () => (h = await startVault()));
  afterAll(() => h.close());

  it('stores only ciphertext and a wrapped data key; a lease releases the value once, recorded as a read', async () => {
    const marker = `MARKER-${randomBytes(8).toString('hex')}`;
    const secret = await h.secrets.create(admin('acme'), { name: 'gerrit-1', value: value(marker), scopes: ['tool:gerrit'] });
    expect(secret).toMatchObject({ name: 'gerrit-1', version: 1, state: 'active', scopes: ['tool:gerrit'], createdBy: 'user:u-admin' });
    const [row] = await h.db.dataSource.query(`SELECT * FROM "${h.db.schema}".secret_versions WHERE secret_id = $1`, [secret.id]);
    for (const column of Object.values(row)) expect(String(column)).not.toContain(marker);
    expect(Buffer.from(row.ciphertext).includes(Buffer.from(marker))).toBe(false);

    const granted = await lease(h, agent('acme'), secret.id);
    expect(granted.token).toMatch(/^pl_/);
    const redeemed = await redeemFor(h, granted, 'acme');
    expect(redeemed).toEqual({ leaseId: granted.leaseId, secretId: secret.id, version: 1, value: marker });
    const events = await eventStoreText(h);
    expect(events).not.toContain(marker);
    expect(events).not.toContain(granted.token);
    const read = (await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.read'`))[0].envelope;
    expect(read).toMatchObject({
      tenantId: 'acme',
      actor: { type: 'service', id: 'sandbox-orchestrator' },
      data: { secretId: secret.id, version: 1, leaseId: granted.leaseId, sessionId: 'sess-1', tool: 'gerrit', consumer: 'sandbox-orchestrator' },
    });
  });

  it('refuses a ciphertext row swapped with another (tenant, secret, version binding)', async () => {
    const a = await h.secrets.create(admin('acme'), { name: 'swap-a', value: value('value-a'), scopes: ['tool:gerrit'] });
    const b = await h.secrets.create(admin('acme'), { name: 'swap-b', value: value('value-b'), scopes: ['tool:gerrit'] });
    const owner = h.db.schema;
    // An attacker with write access to the table moves B's ciphertext and wrapped key into A's row.
    const ownerDs = await import('@palisade/postgres').then((m) => m.createDataSource({ ...h.db.owner, poolSize: 1 }));
    await ownerDs.initialize();
    try {
      await ownerDs.query(
        `UPDATE "${owner}".secret_versions a SET wrapped_dek = b.wrapped_dek, iv = b.iv, tag = b.tag, ciphertext = b.ciphertext
           FROM "${owner}".secret_versions b WHERE a.secret_id = $1 AND b.secret_id = $2`,
        [a.id, b.id],
      );
    } finally {
      await ownerDs.destroy();
    }
    const granted = await lease(h, agent('acme'), a.id);
    await expect(redeemFor(h, granted, 'acme')).rejects.toMatchObject({ code: 'illegal_state', message: expect.stringContaining('does not verify') });
    // Nothing was recorded as read, and the lease was not used up by the failed attempt.
    expect(await h.db.dataSource.query(`SELECT 1 FROM "${owner}".events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'secretId' = $1`, [a.id])).toHaveLength(0);
  });

  describe('leases', () => {
    let secretId: string;
    beforeAll(async () => {
      secretId = (await h.secrets.create(admin('acme'), { name: 'lease-target', value: value('lease-value'), scopes: ['tool:gerrit', 'tool:doors'] })).id;
    });

    it('is single use by default', async () => {
      const granted = await lease(h, agent('acme'), secretId);
      await expect(redeemFor(h, granted, 'acme')).resolves.toMatchObject({ value: 'lease-value' });
      await expect(redeemFor(h, granted, 'acme')).rejects.toMatchObject({ code: 'illegal_state', message: 'lease already used' });
    });

    it('allows exactly `uses` redemptions, also when they race', async () => {
      const granted = await lease(h, agent('acme'), secretId, { uses: 3 });
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => redeemFor(h, granted, 'acme')));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
      const reads = await h.db.dataSource.query(`SELECT count(*)::int AS n FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'leaseId' = $1`, [granted.leaseId]);
      expect(reads[0].n).toBe(3);
    });

    it('expires: at most 60 s, refused once past its time', async () => {
      await expect(lease(h, agent('acme'), secretId, { ttlSeconds: 61 })).rejects.toMatchObject({ code: 'validation', message: 'ttlSeconds: at most 60' });
      const granted = await lease(h, agent('acme'), secretId, { ttlSeconds: 5 });
      h.clock.now = new Date(h.clock.now.getTime() + 5000);
      try {
        await expect(redeemFor(h, granted, 'acme')).rejects.toMatchObject({ code: 'illegal_state', message: 'lease expired' });
      } finally {
        h.clock.now = new Date();
      }
    });

    it('is bound to session, tool and tenant: any other is not found', async () => {
      const granted = await lease(h, agent('acme'), secretId);
      await expect(h.leases.redeem('sandbox-orchestrator', { token: granted.token, tenantId: 'acme', sessionId: 'sess-2', tool: 'gerrit' })).rejects.toMatchObject({ code: 'not_found' });
      await expect(h.leases.redeem('sandbox-orchestrator', { token: granted.token, tenantId: 'acme', sessionId: 'sess-1', tool: 'doors' })).rejects.toMatchObject({ code: 'not_found' });
      await expect(h.leases.redeem('sandbox-orchestrator', { token: granted.token, tenantId: 'globex', sessionId: 'sess-1', tool: 'gerrit' })).rejects.toMatchObject({ code: 'not_found' });
      await expect(h.leases.redeem('sandbox-orchestrator', { token: `pl_${'A'.repeat(43)}`, tenantId: 'acme', sessionId: 'sess-1', tool: 'gerrit' })).rejects.toMatchObject({ code: 'not_found' });
      // The right binding still works: the failed attempts did not consume it.
      await expect(redeemFor(h, granted, 'acme')).resolves.toMatchObject({ value: 'lease-value' });
    });

    it('is granted only for a tool within the secret scopes, and never to another tenant', async () => {
      await expect(lease(h, agent('acme'), secretId, { tool: 'feishu' })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(lease(h, agent('globex'), secretId)).rejects.toMatchObject({ code: 'not_found' });
      await expect(lease(h, { ...agent('acme'), scopes: ['credential:read'] }, secretId)).rejects.toMatchObject({ code: 'forbidden' });
    });

    it('a rotation between two grants of one secret: the second is decided on the rotated row and releases the new version', async () => {
      const s = await h.secrets.create(admin('acme'), { name: 'rotates-between-grants', value: value('before'), scopes: ['tool:gerrit'] });
      await expect(redeemFor(h, await lease(h, agent('acme'), s.id), 'acme')).resolves.toMatchObject({ version: 1, value: 'before' });
      await h.secrets.rotate(admin('acme'), s.id, { value: value('after') }, s.etag);
      await expect(redeemFor(h, await lease(h, agent('acme'), s.id), 'acme')).resolves.toMatchObject({ version: 2, value: 'after' });
    });

    it('dies with its secret: a revoked secret releases nothing, even on a lease granted before', async () => {
      const s = await h.secrets.create(admin('acme'), { name: 'to-revoke', value: value('v'), scopes: ['tool:gerrit', 'tool:doors'] });
      const granted = await lease(h, agent('acme'), s.id);
      const revoked = await h.secrets.revoke(admin('acme'), s.id, 'leaked in a ticket');
      expect(revoked.state).toBe('revoked');
      await expect(redeemFor(h, granted, 'acme')).rejects.toMatchObject({ code: 'not_found' });
      await expect(lease(h, agent('acme'), s.id)).rejects.toMatchObject({ code: 'illegal_state' });
      const history = await h.secrets.history(admin('acme'), s.id);
      expect(history.at(-1)).toMatchObject({
        type: 'credential.secret.revoked',
        actor: { type: 'user', id: 'u-admin' },
        occurredAt: expect.any(String),
        data: { scopesAffected: ['tool:gerrit', 'tool:doors'], versionsAffected: [1], reason: 'leaked in a ticket' },
      });
    });
  });

  describe('rotation', () => {
    it('puts a new version, serves it, keeps the old for the overlap window, then retires (and shreds) it', async () => {
      const s = await h.secrets.create(admin('acme'), { name: 'rotating', value: value('v1'), scopes: ['tool:gerrit'], overlapSeconds: 600 });
      const rotated = await h.secrets.rotate(admin('acme'), s.id, { value: value('v2') }, s.etag);
      expect(rotated.version).toBe(2);
      await expect(h.secrets.rotate(admin('acme'), s.id, { value: value('v3') }, s.etag)).rejects.toMatchObject({ code: 'conflict' });
      await expect(redeemFor(h, await lease(h, agent('acme'), s.id), 'acme')).resolves.toMatchObject({ value: 'v2', version: 2 });
      const versions = async () => (await h.repos.secrets.versions('acme', s.id)).map((v) => v.version);
      expect(await versions()).toEqual([1, 2]);
      expect((await h.maintenance.maintain()).retired).toBe(0);
      h.clock.now = new Date(Date.now() + 601_000);
      try {
        expect((await h.maintenance.maintain()).retired).toBeGreaterThanOrEqual(1);
      } finally {
        h.clock.now = new Date();
      }
      expect(await versions()).toEqual([2]);
      const types = (await h.secrets.history(admin('acme'), s.id)).map((e) => e.type);
      expect(types).toEqual(['credential.secret.created', 'credential.secret.rotated', 'credential.secret.version_retired']);
    });

    it('rotates with a pluggable rotator, and refuses an unknown one', async () => {
      const s = await h.secrets.create(admin('acme'), { name: 'auto', value: value('initial'), scopes: ['tool:gerrit'] });
      await h.secrets.rotate(admin('acme'), s.id, { rotator: 'random' });
      const redeemed = await redeemFor(h, await lease(h, agent('acme'), s.id), 'acme');
      expect(redeemed.version).toBe(2);
      expect(redeemed.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      await expect(h.secrets.rotate(admin('acme'), s.id, { rotator: 'gerrit' })).rejects.toMatchObject({ code: 'validation' });
      const rotatedEvent = (await h.secrets.history(admin('acme'), s.id))[1];
      expect(rotatedEvent).toMatchObject({ type: 'credential.secret.rotated', actor: { id: 'u-admin' }, data: { version: 2, previousVersion: 1, rotator: 'random' } });
    });

    it('announces due (default 90 days) and overdue rotations', async () => {
      const t = 'sched';
      const s = await h.secrets.create(admin(t), { name: 'scheduled', value: value('x'), scopes: ['tool:gerrit'] });
      expect(Date.parse(s.nextRotationAt) - Date.parse(s.createdAt)).toBe(90 * 86_400_000);
      h.clock.now = new Date(Date.parse(s.nextRotationAt) + 1000);
      try {
        await h.maintenance.maintain();
        expect((await h.secrets.get(admin(t), s.id)).rotationState).toBe('due');
        h.clock.now = new Date(Date.parse(s.nextRotationAt) + 8 * 86_400_000);
        await h.maintenance.maintain();
        await h.maintenance.maintain();
      } finally {
        h.clock.now = new Date();
      }
      expect((await h.secrets.get(admin(t), s.id)).rotationState).toBe('overdue');
      const types = (await h.secrets.history(admin(t), s.id)).map((e) => e.type);
      expect(types).toEqual(['credential.secret.created', 'credential.secret.rotation_due', 'credential.secret.rotation_overdue']);
    });

    it('rotates the tenant KEK by re-wrapping data keys, leaving ciphertexts untouched', async () => {
      const t = 'kekrot';
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await h.secrets.create(admin(t), { name: `s${i}`, value: value(`value-${i}`), scopes: ['tool:gerrit'] })).id);
      const before = await h.db.dataSource.query(`SELECT secret_id, ciphertext, iv, tag, wrapped_dek, kek_version FROM "${h.db.schema}".secret_versions WHERE tenant_id = $1 ORDER BY secret_id`, [t]);
      const result = await h.keyring.rotate(admin(t), { reason: 'annual' });
      expect(result).toEqual({ keyVersion: 2, rewrapped: 3, previousKeyDestroyed: true });
      const after = await h.db.dataSource.query(`SELECT secret_id, ciphertext, iv, tag, wrapped_dek, kek_version FROM "${h.db.schema}".secret_versions WHERE tenant_id = $1 ORDER BY secret_id`, [t]);
      after.forEach((row: Record<string, Buffer | number>, i: number) => {
        expect(row.ciphertext).toEqual(before[i].ciphertext);
        expect(row.iv).toEqual(before[i].iv);
        expect(row.tag).toEqual(before[i].tag);
        expect(row.wrapped_dek).not.toEqual(before[i].wrapped_dek);
        expect(row.kek_version).toBe(2);
      });
      for (const [i, id] of ids.entries()) await expect(redeemFor(h, await lease(h, agent(t), id), t)).resolves.toMatchObject({ value: `value-${i}` });
      expect((await h.keyring.view(admin(t))).keys).toEqual([
        { version: 1, provider: 'local', origin: 'generated', state: 'retired' },
        { version: 2, provider: 'local', origin: 'generated', state: 'active' },
      ]);
    });
  });

  it('crypto-shreds: afterwards no backup, copy, event or log yields the value', async () => {
    const t = 'shred';
    const marker = `SHRED-${randomBytes(8).toString('hex')}`;
    const keep = await h.secrets.create(admin(t), { name: 'keep', value: value('kept-value'), scopes: ['tool:gerrit'] });
    const s = await h.secrets.create(admin(t), { name: 'doomed', value: value(marker), scopes: ['tool:gerrit'] });
    await redeemFor(h, await lease(h, agent(t), s.id), t);
    // A backup: the database rows and the whole key store directory, as an operator would copy them.
    const backupRows = await h.db.dataSource.query(`SELECT * FROM "${h.db.schema}".secret_versions WHERE secret_id = $1`, [s.id]);
    const backupKeys = mkdtempSync(join(tmpdir(), 'vault-backup-'));
    const ring = (await h.repos.keyring.keyring(t))!;
    try {
      const outcome = await h.secrets.shred(admin(t), s.id, 'offboarding');
      expect(outcome).toMatchObject({ secretId: s.id, versionsDestroyed: [1], keyVersion: 2, previousKeyDestroyed: true });
      await expect(h.secrets.get(admin(t), s.id)).rejects.toMatchObject({ code: 'not_found' });
      expect(await h.repos.secrets.versions(t, s.id)).toEqual([]);
      // The backup taken before cannot be opened with the live key provider any more.
      const kek = ring.keys[0];
      const row = backupRows[0];
      const binding = { tenantId: t, secretId: s.id, version: 1 };
      await expect(h.local.unwrap(kek.keyRef, row.wrapped_dek, bindingContext(binding, row.cipher))).rejects.toMatchObject({ code: 'illegal_state' });
      // Not even a fresh provider instance reading the key store from disk.
      cpSync(join(h.keyDir), backupKeys, { recursive: true });
      const fromDisk = new LocalKeyProvider({ masterKeyFile: join(backupKeys, 'master.key'), keystoreDir: join(backupKeys, 'keys') });
      await expect(fromDisk.unwrap(kek.keyRef, row.wrapped_dek, bindingContext(binding, row.cipher))).rejects.toMatchObject({ code: 'illegal_state' });
      expect(() => open({ cipher: row.cipher, iv: row.iv, tag: row.tag, ciphertext: row.ciphertext }, randomBytes(32), binding)).toThrow();
      // The event store never held it.
      expect(await eventStoreText(h)).not.toContain(marker);
      // The other secret of the tenant survived the KEK rotation.
      await expect(redeemFor(h, await lease(h, agent(t), keep.id), t)).resolves.toMatchObject({ value: 'kept-value' });
      const history = (await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events WHERE stream_id = $1 ORDER BY stream_version`, [`secret-${s.id}`])).map(
        (r: { envelope: { type: string } }) => r.envelope.type,
      );
      expect(history).toEqual(['credential.secret.created', 'credential.secret.shredded']);
    } finally {
      rmSync(backupKeys, { recursive: true, force: true });
    }
  });

  it('an sm4 tenant: KEK sealed with SM4, secrets stored as sm4 (iv 16, tag 32), leased back; old AES secrets still read after the switch; rotation re-encrypts into sm4', async () => {
    const t = 'sm4-tenant';
    await expect(h.keyring.provision(admin(t), { provider: 'local', cipher: 'sm4' })).resolves.toMatchObject({ cipher: 'sm4', currentVersion: 1 });
    const secret = await h.secrets.create(admin(t), { name: 'sm4-1', value: value('sm4-value'), scopes: ['tool:gerrit'] });
    const [row] = await h.db.dataSource.query(`SELECT cipher, iv, tag, wrapped_dek FROM "${h.db.schema}".secret_versions WHERE secret_id = $1`, [secret.id]);
    expect(row.cipher).toBe('sm4');
    expect(Buffer.from(row.iv)).toHaveLength(16);
    expect(Buffer.from(row.tag)).toHaveLength(32);
    expect(Buffer.from(row.wrapped_dek)).toHaveLength(16 + 32 + 32); // the data key wrapped with SM4-CTR + HMAC-SM3, not AES-GCM (12 + 16 + 32)
    const kekRef = (await h.repos.keyring.keyring(t))!.keys[0].keyRef;
    expect(kekRef).toMatch(/^local:sm4:/);
    await expect(redeemFor(h, await lease(h, agent(t), secret.id), t)).resolves.toMatchObject({ value: 'sm4-value', version: 1 });
    const created = (await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.created' AND envelope->'data'->>'secretId' = $1`, [secret.id]))[0];
    expect(JSON.stringify(created?.envelope ?? {})).toContain('"sm4"');

    // An AES tenant switches: the old secret still reads, a rotation re-encrypts it with sm4.
    const u = 'aes-then-sm4';
    const old = await h.secrets.create(admin(u), { name: 'old', value: value('aes-value'), scopes: ['tool:gerrit'] });
    await expect(h.keyring.setCipher(admin(u), 'sm4')).resolves.toMatchObject({ cipher: 'sm4' });
    await expect(redeemFor(h, await lease(h, agent(u), old.id), u)).resolves.toMatchObject({ value: 'aes-value', version: 1 });
    await h.secrets.rotate(admin(u), old.id, { value: value('sm4-now') });
    const ciphers = await h.db.dataSource.query(`SELECT version, cipher FROM "${h.db.schema}".secret_versions WHERE secret_id = $1 ORDER BY version`, [old.id]);
    expect(ciphers).toEqual([{ version: 1, cipher: 'aes-256-gcm' }, { version: 2, cipher: 'sm4' }]);
    await expect(redeemFor(h, await lease(h, agent(u), old.id), u)).resolves.toMatchObject({ value: 'sm4-now', version: 2 });
  });
});

describe('sm4 where the key provider cannot hold SM4 keys (SoftHSM2)', () => {
  let h: Harness;
  beforeAll(async () => (h = await startVault({ providers: [softHsm()] })));
  afterAll(() => h.close());

  it('is refused when the key ring is provisioned, when the cipher is set and when the ring is rotated onto it, never at the first read', async () => {
    const refusal = { code: 'validation', message: expect.stringContaining('sm4 with provider pkcs11: the pkcs11 key provider cannot hold SM4 key-encryption keys') };
    await expect(h.keyring.provision(admin('hsm-a'), { provider: 'pkcs11', cipher: 'sm4' })).rejects.toMatchObject(refusal);
    expect(await h.repos.keyring.keyring('hsm-a')).toBeUndefined();
    await h.keyring.provision(admin('hsm-b'), { provider: 'pkcs11', cipher: 'aes-256-gcm' });
    await expect(h.keyring.setCipher(admin('hsm-b'), 'sm4')).rejects.toMatchObject(refusal);
    await h.keyring.provision(admin('hsm-c'), { provider: 'local', cipher: 'sm4' });
    await expect(h.keyring.rotate(admin('hsm-c'), { provider: 'pkcs11' })).rejects.toMatchObject(refusal);
    expect((await h.keyring.view(admin('hsm-c'))).keys).toHaveLength(1);
  });
});

describe('BYOK', () => {
  let h: Harness;
  let kms: KmsEndpoint;
  beforeAll(async () => {
    kms = await startKmsEndpoint();
    const awsKms = new AwsKmsKeyProvider({ region: 'eu-central-1', endpoint: kms.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' } });
    h = await startVault({ providers: [awsKms, softHsm()] });
  });
  afterAll(async () => {
    await h.close();
    await kms.close();
  });

  it('a referenced KMS key the tenant disables on its side makes its secrets unreadable at once', async () => {
    const t = 'byok-ref';
    const arn = kms.createKey();
    await h.keyring.provision(admin(t), { provider: 'aws-kms', byok: { keyRef: arn } });
    const s = await h.secrets.create(admin(t), { name: 'k', value: value('byok-value'), scopes: ['tool:gerrit'] });
    await expect(redeemFor(h, await lease(h, agent(t), s.id), t)).resolves.toMatchObject({ value: 'byok-value' });
    const pending = await lease(h, agent(t), s.id);
    kms.disableKey(arn);
    await expect(redeemFor(h, pending, t)).rejects.toMatchObject({ code: 'illegal_state', message: expect.stringContaining('DisabledException') });
    expect(await h.db.dataSource.query(`SELECT 1 FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'leaseId' = $1`, [pending.leaseId])).toHaveLength(0);
  });

  it.each(['aws-kms', 'pkcs11', 'local'] as const)('imported key material on %s: revoking it makes the secrets unreadable at once', async (provider) => {
    const t = `byok-imp-${provider}`;
    await h.keyring.provision(admin(t), { provider, byok: { material: randomBytes(32) } });
    const s = await h.secrets.create(admin(t), { name: 'k', value: value('imported'), scopes: ['tool:gerrit'] });
    const pending = await lease(h, agent(t), s.id, { uses: 2 });
    await expect(redeemFor(h, pending, t)).resolves.toMatchObject({ value: 'imported' });
    const ring = await h.keyring.revokeKey(admin(t), { version: 1, reason: 'customer withdrew consent' });
    expect(ring.keys[0]).toMatchObject({ version: 1, origin: 'imported', state: 'revoked', provider });
    await expect(redeemFor(h, pending, t)).rejects.toMatchObject({ code: 'illegal_state', message: expect.stringContaining('revoked') });
    await expect(h.secrets.create(admin(t), { name: 'k2', value: value('x'), scopes: [] })).rejects.toMatchObject({ code: 'illegal_state' });
  });

  it('refuses a reference to a key the vault cannot use', async () => {
    await expect(h.keyring.provision(admin('byok-bad'), { provider: 'aws-kms', byok: { keyRef: 'arn:aws:kms:eu-central-1:111122223333:key/00000000-0000-0000-0000-000000000000' } })).rejects.toMatchObject({
      code: 'illegal_state',
    });
    await expect(h.keyring.provision(admin('byok-bad'), { provider: 'pkcs11', byok: { keyRef: 'whatever' } })).rejects.toMatchObject({ code: 'validation' });
  });

  it('KEK rotation across providers (local → SoftHSM2) keeps every secret readable', async () => {
    const t = 'to-hsm';
    const s = await h.secrets.create(admin(t), { name: 'k', value: value('moving'), scopes: ['tool:gerrit'] });
    await expect(h.keyring.rotate(admin(t), { provider: 'pkcs11' })).resolves.toEqual({ keyVersion: 2, rewrapped: 1, previousKeyDestroyed: true });
    await expect(redeemFor(h, await lease(h, agent(t), s.id), t)).resolves.toMatchObject({ value: 'moving' });
  });
});

describe('vault storing ciphertexts in AWS Secrets Manager', () => {
  let h: Harness;
  let sm: SecretsManagerEndpoint;
  beforeAll(async () => {
    sm = await startSecretsManagerEndpoint();
    h = await startVault({ storage: new SecretsManagerCiphertextStore({ region: 'eu-central-1', endpoint: sm.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' } }) });
  });
  afterAll(async () => {
    await h.close();
    await sm.close();
  });

  it('keeps only ciphertext there, the wrapped data key here, and deletes it without recovery on shredding', async () => {
    const marker = `SM-${randomBytes(8).toString('hex')}`;
    const s = await h.secrets.create(admin('acme'), { name: 'sm', value: value(marker), scopes: ['tool:gerrit'] });
    expect(s.storage).toBe('aws-secrets-manager');
    const stored = [...sm.stored().values()];
    expect(stored).toHaveLength(1);
    expect(stored[0]).not.toContain(marker);
    expect(JSON.parse(stored[0])).toMatchObject({ v: 1, cipher: 'aes-256-gcm', iv: expect.any(String), ciphertext: expect.any(String), tag: expect.any(String) });
    const [row] = await h.db.dataSource.query(`SELECT ciphertext, external_ref FROM "${h.db.schema}".secret_versions WHERE secret_id = $1`, [s.id]);
    expect(row.ciphertext).toBeNull();
    expect(row.external_ref).toBe(`palisade/acme/${s.id}/v1`);
    await expect(redeemFor(h, await lease(h, agent('acme'), s.id), 'acme')).resolves.toMatchObject({ value: marker });
    await h.secrets.shred(admin('acme'), s.id, 'done');
    expect(sm.calls).toEqual(['CreateSecret', 'GetSecretValue', 'DeleteSecret']);
    expect(sm.unsignedRequests).toBe(0);
  });
});
