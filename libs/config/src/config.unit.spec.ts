import { ConfigError, env, loadConfig } from './index';

describe('loadConfig', () => {
  const shape = {
    HTTP_PORT: env.port(7101),
    NATS_URL: env.url(['tls']),
    KAFKA_BROKERS: env.hostPorts(),
    DB_PASSWORD: env.path(),
    AUDIT_ENABLED: env.bool(true),
  };

  it('parses and applies defaults', () => {
    const config = loadConfig(shape, { NATS_URL: 'tls://127.0.0.1:4223', KAFKA_BROKERS: 'a:1, b:2', DB_PASSWORD: 'x' });
    expect(config).toEqual({
      HTTP_PORT: 7101,
      NATS_URL: 'tls://127.0.0.1:4223',
      KAFKA_BROKERS: ['a:1', 'b:2'],
      DB_PASSWORD: 'x',
      AUDIT_ENABLED: true,
    });
  });

  it('names every bad variable and hides secret values', () => {
    let error: unknown;
    try {
      loadConfig(shape, { HTTP_PORT: '99999', NATS_URL: 'nats://x:1', KAFKA_BROKERS: 'nope', DB_PASSWORD: '', AUDIT_ENABLED: 'maybe' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/HTTP_PORT: .*got "99999"/);
    expect(message).toMatch(/NATS_URL: must be a URL with scheme tls/);
    expect(message).toMatch(/KAFKA_BROKERS: must be host:port/);
    expect(message).toMatch(/AUDIT_ENABLED: must be true or false/);
    expect(message).toMatch(/DB_PASSWORD: .*value hidden/);
  });

  it('reports a missing required variable as unset', () => {
    expect(() => loadConfig({ NATS_URL: env.url(['tls']) }, {})).toThrow(/NATS_URL: .*\(unset\)/);
  });
});
