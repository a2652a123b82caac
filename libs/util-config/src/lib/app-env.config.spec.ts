import { IsInt, Max, Min } from 'class-validator';
import { BaseAppEnv, NatsEnv, RedisEnv } from './app-env.config';
import { ConfigValidationError, loadConfig, redactedConfig, Secret } from './env.config';

class RegistryLikeEnv extends RedisEnv {
  override PORT: number = 3013;

  @IsInt() @Min(10) @Max(10_000)
  override REDIS_COMMAND_TIMEOUT_MS: number = 100;

  @Secret()
  OWN_TOKEN: string = 'x';
}

class InvalidatorLikeEnv extends RedisEnv {
  override PORT: number = 3015;
}

function problemsOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigValidationError) return error.problems.join('\n');
    throw error;
  }
  throw new Error('expected a ConfigValidationError');
}

describe('base env classes', () => {
  it('give every app the shared variables, with the app overriding only its defaults', () => {
    const registry = loadConfig(RegistryLikeEnv, {});
    const invalidator = loadConfig(InvalidatorLikeEnv, {});
    expect(registry).toMatchObject({ NODE_ENV: 'development', HOST: '0.0.0.0', PORT: 3013, LOG_LEVEL: 'info', NATS_URL: 'nats://127.0.0.1:4222', REDIS_COMMAND_TIMEOUT_MS: 100 });
    expect(invalidator).toMatchObject({ PORT: 3015, REDIS_COMMAND_TIMEOUT_MS: 500, NATS_ALLOW_ANONYMOUS: false });
    expect(loadConfig(InvalidatorLikeEnv, { PORT: '4000', SUBJECT_PREFIX: 'blue' })).toMatchObject({ PORT: 4000, redisKeyPrefix: 'blue:' });
  });

  it('keep the inherited validation unless the app redeclares it', () => {
    expect(problemsOf(() => loadConfig(RegistryLikeEnv, { REDIS_COMMAND_TIMEOUT_MS: '20000' }))).toContain('REDIS_COMMAND_TIMEOUT_MS must not be greater than 10000');
    expect(loadConfig(InvalidatorLikeEnv, { REDIS_COMMAND_TIMEOUT_MS: '20000' }).REDIS_COMMAND_TIMEOUT_MS).toBe(20_000);
    expect(problemsOf(() => loadConfig(InvalidatorLikeEnv, { PORT: '70000', SUBJECT_PREFIX: 'a.b', NODE_ENV: 'prod' }))).toMatch(
      /PORT[\s\S]*must not be greater than 65535[\s\S]*NODE_ENV must be one of: development, production, test|NODE_ENV must be one of: development, production, test[\s\S]*PORT/,
    );
    expect(problemsOf(() => loadConfig(BaseAppEnv, { LOG_LEVEL: 'loud' }))).toContain('LOG_LEVEL must be one of: fatal, error, warn, info, debug, trace, silent');
  });

  it("keep one app's secrets out of another's, and the inherited ones in both", () => {
    const registry = redactedConfig(loadConfig(RegistryLikeEnv, { OWN_TOKEN: 'app-secret', NATS_PASSWORD: 'nats-secret', REDIS_URL: 'redis://:pw@cache:6379' }));
    expect(registry).toMatchObject({ OWN_TOKEN: '***', NATS_PASSWORD: '***', REDIS_URL: '***' });
    const nats = redactedConfig(Object.assign(loadConfig(NatsEnv, { NATS_TOKEN: 'tok' }), { OWN_TOKEN: 'visible' }));
    expect(nats).toMatchObject({ NATS_TOKEN: '***', OWN_TOKEN: 'visible' });
  });
});
