import { randomBytes } from 'node:crypto';
import { admin, eventStoreText, startVault, type Harness } from './support/harness';

// Service secrets (auth's identity-provider secrets) in the Vault over real PostgreSQL:
// what the internal mTLS routes call once the client certificate named the caller.
const value = (s: string) => Buffer.from(s, 'utf8');
const marker = () => `MARKER-${randomBytes(8).toString('hex')}`;

describe('service secrets (Vault over PostgreSQL)', () => {
  let h: Harness;
  beforeAll(async () => (h = await startVault()));
  afterAll(() => h.close());

  const reads = async (secretId: string) =>
    (await h.db.dataSource.query(`SELECT envelope FROM "${h.db.schema}".events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'secretId' = $1 ORDER BY global_position`, [secretId])).map(
      (r: { envelope: { actor: unknown; data: unknown } }) => r.envelope,
    );

  it('creates under auth:idp, then rotates by name; racing first puts give one secret with two versions', async () => {
    const first = await h.serviceSecrets.put('auth', 'acme', 'idp.corp', value(marker()));
    expect(first.version).toBe(1);
    const second = await h.serviceSecrets.put('auth', 'acme', 'idp.corp', value(marker()));
    expect(second).toEqual({ secretId: first.secretId, version: 2 });
    expect(await h.secrets.get(admin('acme'), first.secretId)).toMatchObject({ name: 'idp.corp', scopes: ['auth:idp'], createdBy: 'service:auth', version: 2 });

    const raced = await Promise.all([h.serviceSecrets.put('auth', 'acme', 'idp.race', value(marker())), h.serviceSecrets.put('auth', 'acme', 'idp.race', value(marker()))]);
    expect(raced[0].secretId).toBe(raced[1].secretId);
    expect(raced.map((r) => r.version).sort()).toEqual([1, 2]);
  });

  it('reads the current value only after recording credential.secret.read (consumer, purpose); values never in events', async () => {
    const v1 = marker();
    const v2 = marker();
    const { secretId } = await h.serviceSecrets.put('auth', 'acme', 'idp.okta', value(v1));
    await expect(h.serviceSecrets.read('auth', 'acme', secretId, 'idp-sign-in')).resolves.toEqual({ secretId, version: 1, value: v1 });
    await h.serviceSecrets.put('auth', 'acme', 'idp.okta', value(v2));
    await expect(h.serviceSecrets.read('auth', 'acme', secretId, 'idp-sign-in')).resolves.toEqual({ secretId, version: 2, value: v2 });
    expect(await reads(secretId)).toEqual([
      expect.objectContaining({ actor: { type: 'service', id: 'auth' }, data: { secretId, version: 1, consumer: 'auth', purpose: 'idp-sign-in' } }),
      expect.objectContaining({ data: { secretId, version: 2, consumer: 'auth', purpose: 'idp-sign-in' } }),
    ]);
    const events = await eventStoreText(h);
    expect(events).not.toContain(v1);
    expect(events).not.toContain(v2);
  });

  it('is not found for another tenant, another service, or a secret outside the caller\'s scope; a name it does not own is a conflict', async () => {
    const { secretId } = await h.serviceSecrets.put('auth', 'acme', 'idp.ldap', value(marker()));
    await expect(h.serviceSecrets.read('auth', 'globex', secretId, 'idp-sign-in')).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.serviceSecrets.read('sandbox-orchestrator', 'acme', secretId, 'x')).rejects.toMatchObject({ code: 'not_found' });
    const tool = await h.secrets.create(admin('acme'), { name: 'gerrit', value: value(marker()), scopes: ['tool:gerrit'] });
    await expect(h.serviceSecrets.read('auth', 'acme', tool.id, 'idp-sign-in')).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.serviceSecrets.delete('auth', 'acme', tool.id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.serviceSecrets.put('auth', 'acme', 'gerrit', value(marker()))).rejects.toMatchObject({ code: 'conflict' });
    // a service without a scope of its own keeps nothing; one with a scope keeps its own, which no other service reads
    await expect(h.serviceSecrets.put('billing', 'acme', 'idp.x', value(marker()))).rejects.toMatchObject({ code: 'forbidden' });
    const routers = await h.serviceSecrets.put('llm-router', 'acme', 'idp.x', value(marker()));
    await expect(h.serviceSecrets.read('auth', 'acme', routers.secretId, 'idp-sign-in')).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.serviceSecrets.read('llm-router', 'acme', secretId, 'provider-call')).rejects.toMatchObject({ code: 'not_found' });
    expect(await reads(tool.id)).toEqual([]);
  });

  it('releases nothing, and records nothing, once an administrator revoked the secret or the tenant’s key', async () => {
    const { secretId } = await h.serviceSecrets.put('auth', 'initech', 'idp.corp', value(marker()));
    await h.secrets.revoke(admin('initech'), secretId, 'leaked');
    await expect(h.serviceSecrets.read('auth', 'initech', secretId, 'idp-sign-in')).rejects.toMatchObject({ code: 'illegal_state' });
    await expect(h.serviceSecrets.put('auth', 'initech', 'idp.corp', value(marker()))).rejects.toMatchObject({ code: 'illegal_state' });
    expect(await reads(secretId)).toEqual([]);

    const other = await h.serviceSecrets.put('auth', 'initech', 'idp.okta', value(marker()));
    const ring = await h.keyring.view(admin('initech'));
    await h.keyring.revokeKey(admin('initech'), { version: ring.currentVersion, reason: 'customer revoked' });
    await expect(h.serviceSecrets.read('auth', 'initech', other.secretId, 'idp-sign-in')).rejects.toMatchObject({ code: 'illegal_state' });
    expect(await reads(other.secretId)).toEqual([]);
  });

  it('deletes by crypto-shredding: the name is free for the next provider of that id', async () => {
    const { secretId } = await h.serviceSecrets.put('auth', 'hooli', 'idp.corp', value(marker()));
    await expect(h.serviceSecrets.delete('auth', 'hooli', secretId)).resolves.toEqual({ secretId, versionsDestroyed: [1] });
    await expect(h.serviceSecrets.read('auth', 'hooli', secretId, 'idp-sign-in')).rejects.toMatchObject({ code: 'not_found' });
    const again = await h.serviceSecrets.put('auth', 'hooli', 'idp.corp', value(marker()));
    expect(again.secretId).not.toBe(secretId);
    expect(again.version).toBe(1);
  });
});
