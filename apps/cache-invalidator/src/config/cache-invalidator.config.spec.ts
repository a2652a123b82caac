import { ConfigValidationError, loadConfig, redactedConfig } from '@switchboard/config';
import { CacheInvalidatorConfig } from './cache-invalidator.config';

describe('CacheInvalidatorConfig', () => {
  it('defaults to the standard loopback services, port 3015 and one shared durable consumer', () => {
    const config = loadConfig(CacheInvalidatorConfig, {});
    expect(config).toMatchObject({ PORT: 3015, NATS_URL: 'nats://127.0.0.1:4222', REDIS_URL: 'redis://127.0.0.1:6379', CONSUMER_NAME: 'cache-invalidator', CACHE_TTL_SECONDS: 120 });
    expect(config.redisKeyPrefix).toBe('');
  });

  it('isolates keys by the subject prefix unless a key prefix is given', () => {
    expect(loadConfig(CacheInvalidatorConfig, { SUBJECT_PREFIX: 'blue' }).redisKeyPrefix).toBe('blue:');
    expect(loadConfig(CacheInvalidatorConfig, { SUBJECT_PREFIX: 'blue', REDIS_KEY_PREFIX: 'green:' }).redisKeyPrefix).toBe('green:');
  });

  it('names each bad variable', () => {
    expect(() => loadConfig(CacheInvalidatorConfig, { REDIS_URL: 'http://x', CONSUMER_ACK_WAIT_MS: '10', CONSUMER_NAME: 'a.b' })).toThrow(ConfigValidationError);
    try {
      loadConfig(CacheInvalidatorConfig, { REDIS_URL: 'http://x', CONSUMER_ACK_WAIT_MS: '10', CONSUMER_NAME: 'a.b' });
    } catch (error) {
      const problems = (error as ConfigValidationError).problems.join('\n');
      expect(problems).toContain('REDIS_URL');
      expect(problems).toContain('CONSUMER_ACK_WAIT_MS');
      expect(problems).toContain('CONSUMER_NAME');
    }
  });

  it('never logs the Redis URL, which may hold a password', () => {
    const config = loadConfig(CacheInvalidatorConfig, { REDIS_URL: 'redis://:hunter2@cache:6379' });
    expect(JSON.stringify(redactedConfig(config))).not.toContain('hunter2');
  });
});
