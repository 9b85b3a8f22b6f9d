import { loadAuditConfig } from './audit.config';

const base = { KAFKA_BROKERS: '127.0.0.1:9093', AUDIT_KEK_FILE: '/tmp/palisade-audit-config-test/kek.key' };

describe('AUDIT_CHECKPOINT_ALGORITHM', () => {
  it('defaults to ed25519 (audit log format version 1) and accepts sm2', () => {
    expect(loadAuditConfig({ ...base }).AUDIT_CHECKPOINT_ALGORITHM).toBe('ed25519');
    expect(loadAuditConfig({ ...base, AUDIT_CHECKPOINT_ALGORITHM: 'sm2' }).AUDIT_CHECKPOINT_ALGORITHM).toBe('sm2');
  });

  it('refuses anything else at boot, naming the variable', () => {
    expect(() => loadAuditConfig({ ...base, AUDIT_CHECKPOINT_ALGORITHM: 'ecdsa' })).toThrow(/AUDIT_CHECKPOINT_ALGORITHM/);
  });
});

describe('transport key lifetimes', () => {
  it('default to rotation 1 day and grace 7 days: producers\' transport-sealed copies of an erased subject stay openable at most 9 days', () => {
    const config = loadAuditConfig({ ...base });
    const day = 24 * 3600 * 1000;
    expect(config.AUDIT_TRANSPORT_KEY_ROTATION_MS).toBe(day);
    expect(config.AUDIT_TRANSPORT_KEY_GRACE_MS).toBe(7 * day);
    expect(2 * config.AUDIT_TRANSPORT_KEY_ROTATION_MS + config.AUDIT_TRANSPORT_KEY_GRACE_MS).toBe(9 * day);
  });
});
