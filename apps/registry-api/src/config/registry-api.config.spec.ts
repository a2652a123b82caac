import { ConfigValidationError, loadConfig, redactedConfig } from '@switchboard/config';
import { DEV_ADMIN_TOKEN, productionRules, RegistryApiConfig } from './registry-api.config';

describe('RegistryApiConfig', () => {
  it('starts on documented defaults with an empty environment', () => {
    const config = loadConfig(RegistryApiConfig, {}, productionRules);
    expect(config).toMatchObject({ PORT: 3013, NATS_URL: 'nats://127.0.0.1:4222', ADMIN_TOKEN: DEV_ADMIN_TOKEN, DATABASE_CREATE_IF_MISSING: true });
  });

  it('converts numbers and booleans from env strings', () => {
    const config = loadConfig(RegistryApiConfig, { PORT: '4000', HEARTBEAT_FLUSH_INTERVAL_MS: '50', DATABASE_CREATE_IF_MISSING: 'false' });
    expect(config).toMatchObject({ PORT: 4000, HEARTBEAT_FLUSH_INTERVAL_MS: 50, DATABASE_CREATE_IF_MISSING: false });
  });

  it('stops with a message naming each bad variable', () => {
    expect(() => loadConfig(RegistryApiConfig, { PORT: 'eighty', DATABASE_URL: 'mysql://x' })).toThrow(ConfigValidationError);
    try {
      loadConfig(RegistryApiConfig, { PORT: 'eighty', DATABASE_URL: 'mysql://x' });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('PORT');
      expect(message).toContain('DATABASE_URL must be a postgres:// URL');
    }
  });

  it('reads the security settings, and stops naming REGISTRY_ALLOWED_ENDPOINTS and its bad entry', () => {
    expect(loadConfig(RegistryApiConfig, {})).toMatchObject({ HEALTH_CHECK_MIN_INTERVAL_MS: 1000, REGISTRY_READ_TOKEN: undefined, REGISTRY_ALLOWED_ENDPOINTS: undefined });
    const config = loadConfig(RegistryApiConfig, { REGISTRY_ALLOWED_ENDPOINTS: '10.0.0.0/8, *.svc.cluster.local:8000', HEALTH_CHECK_MIN_INTERVAL_MS: '200', REGISTRY_READ_TOKEN: 'reader-token' });
    expect(config).toMatchObject({ REGISTRY_ALLOWED_ENDPOINTS: '10.0.0.0/8, *.svc.cluster.local:8000', HEALTH_CHECK_MIN_INTERVAL_MS: 200 });
    expect(redactedConfig(config)).toMatchObject({ REGISTRY_READ_TOKEN: '***' });
    expect(() => loadConfig(RegistryApiConfig, { REGISTRY_ALLOWED_ENDPOINTS: '10.0.0.0/8,10.0.0.0/40' })).toThrow(/REGISTRY_ALLOWED_ENDPOINTS: entry "10\.0\.0\.0\/40" is not a CIDR/);
    expect(() => loadConfig(RegistryApiConfig, { HEALTH_CHECK_MIN_INTERVAL_MS: '10' })).toThrow(/HEALTH_CHECK_MIN_INTERVAL_MS/);
  });

  it('refuses to start in production on the development tokens', () => {
    expect(() => loadConfig(RegistryApiConfig, { NODE_ENV: 'production' }, productionRules)).toThrow(/REGISTRY_TOKEN: set a real token[\s\S]*ADMIN_TOKEN: set a real token/);
    const config = loadConfig(
      RegistryApiConfig,
      { NODE_ENV: 'production', REGISTRY_TOKEN: 'r'.repeat(32), ADMIN_TOKEN: 'a'.repeat(32), NATS_USER: 'registry-api', NATS_PASSWORD: 'n'.repeat(32) },
      productionRules,
    );
    expect(config.NODE_ENV).toBe('production');
  });

  it('never shows secrets in its loggable form', () => {
    const config = loadConfig(RegistryApiConfig, { REGISTRY_TOKEN: 'super-secret-value', DATABASE_URL: 'postgres://u:pw@db/x' });
    const shown = JSON.stringify(redactedConfig(config));
    expect(shown).not.toContain('super-secret-value');
    expect(shown).not.toContain('pw@db');
    expect(shown).toContain('"PORT":3013');
  });

  it('turns the discovery cache on by default, keyed apart by the subject prefix, and reads CACHE_ENABLED=false as false', () => {
    const config = loadConfig(RegistryApiConfig, {});
    expect(config).toMatchObject({ CACHE_ENABLED: true, REDIS_URL: 'redis://127.0.0.1:6379', CACHE_TTL_SECONDS: 120 });
    expect(config.redisKeyPrefix).toBe('');
    expect(loadConfig(RegistryApiConfig, { SUBJECT_PREFIX: 'blue' }).redisKeyPrefix).toBe('blue:');
    expect(loadConfig(RegistryApiConfig, { CACHE_ENABLED: 'false' }).CACHE_ENABLED).toBe(false);
    expect(() => loadConfig(RegistryApiConfig, { REDIS_URL: 'localhost:6379' })).toThrow(/REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(JSON.stringify(redactedConfig(loadConfig(RegistryApiConfig, { REDIS_URL: 'redis://:hunter2@cache:6379' })))).not.toContain('hunter2');
  });

  it('keeps 1 copy of the event stream in development and 3 in production unless EVENT_STREAM_REPLICAS says, 1–5', () => {
    expect(loadConfig(RegistryApiConfig, {}).eventStreamReplicas).toBe(1);
    const production = { NODE_ENV: 'production', NATS_ALLOW_ANONYMOUS: 'true' };
    expect(loadConfig(RegistryApiConfig, production).eventStreamReplicas).toBe(3);
    expect(loadConfig(RegistryApiConfig, { ...production, EVENT_STREAM_REPLICAS: '5' }).eventStreamReplicas).toBe(5);
    expect(loadConfig(RegistryApiConfig, { EVENT_STREAM_REPLICAS: '3' }).eventStreamReplicas).toBe(3);
    for (const bad of ['0', '6', 'three']) expect(() => loadConfig(RegistryApiConfig, { EVENT_STREAM_REPLICAS: bad })).toThrow(/EVENT_STREAM_REPLICAS/);
  });
});
