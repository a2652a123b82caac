import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    const registry = redactedConfig(loadConfig(RegistryLikeEnv, { OWN_TOKEN: 'app-secret', NATS_TOKEN: 'nats-secret', REDIS_URL: 'redis://:pw@cache:6379' }));
    expect(registry).toMatchObject({ OWN_TOKEN: '***', NATS_TOKEN: '***', REDIS_URL: '***' });
    const nats = redactedConfig(Object.assign(loadConfig(NatsEnv, { NATS_TOKEN: 'tok' }), { OWN_TOKEN: 'visible' }));
    expect(nats).toMatchObject({ NATS_TOKEN: '***', OWN_TOKEN: 'visible' });
  });
});

describe('NatsEnv', () => {
  // A throwaway user nkey made for this test; it authorizes nothing anywhere.
  const SEED = 'SUABIIMEKIG3O3RJAV434EWIUMTTCGZLFKHXR5LO5URXP7AGFX3TKJ2VGY';
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sb-nats-env-'));
    writeFileSync(join(dir, 'user.nk'), `# the prober's key\n${SEED}\n`);
    writeFileSync(join(dir, 'bad.nk'), 'not a seed\n');
    writeFileSync(join(dir, 'user.creds'), '-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.x\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n' + SEED + '\n------END USER NKEY SEED------\n');
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('connects in development without credentials, with its own inbox prefix', () => {
    expect(loadConfig(NatsEnv, {}).natsConnection('llm-router')).toEqual({
      servers: 'nats://127.0.0.1:4222',
      name: 'llm-router',
      inboxPrefix: '_INBOX.llm-router',
      auth: undefined,
      tls: undefined,
      requireAuthenticatedServer: false,
    });
  });

  it('produces the one authentication method configured, from variables, files or the URL', () => {
    const connect = (env: Record<string, string>) => loadConfig(NatsEnv, env).natsConnection('registry-api');
    expect(connect({ NATS_USER: 'registry-api', NATS_PASSWORD: 'pw' }).auth).toEqual({ kind: 'userPassword', user: 'registry-api', password: 'pw' });
    expect(connect({ NATS_TOKEN: 'tok' }).auth).toEqual({ kind: 'token', token: 'tok' });
    expect(connect({ NATS_NKEY_SEED_FILE: join(dir, 'user.nk') }).auth).toEqual({ kind: 'nkeySeed', seed: new TextEncoder().encode(SEED) });
    expect(connect({ NATS_CREDS: join(dir, 'user.creds') }).auth).toMatchObject({ kind: 'creds' });
    const fromUrl = connect({ NATS_URL: 'nats://svc:p%40ss@n1:4222,nats://svc:p%40ss@n2:4222' });
    expect(fromUrl).toMatchObject({ servers: 'nats://n1:4222,nats://n2:4222', auth: { kind: 'userPassword', user: 'svc', password: 'p@ss' } });
    expect(connect({ NATS_URL: 'tok@n1:4222' })).toMatchObject({ servers: 'n1:4222', auth: { kind: 'token', token: 'tok' } });
    expect(connect({ NATS_TLS_CA: join(dir, 'ca.pem') }).tls).toEqual({ caFile: join(dir, 'ca.pem') });
  });

  it('stops on a missing or wrong file, naming the variable', () => {
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_CREDS: join(dir, 'missing.creds') }))).toMatch(/^NATS_CREDS: cannot read .*missing\.creds \(ENOENT\)$/m);
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_NKEY_SEED_FILE: join(dir, 'bad.nk') }))).toMatch(/^NATS_NKEY_SEED_FILE: .*holds no user nkey seed/m);
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_CREDS: join(dir, 'user.nk') }))).toMatch(/^NATS_CREDS: .* is not a NATS credentials file/m);
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_TLS_CA: join(dir, 'nope.pem') }))).toMatch(/^NATS_TLS_CA: cannot read/m);
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_TLS_CERT: join(dir, 'ca.pem') }))).toContain('NATS_TLS_CERT, NATS_TLS_KEY: set both or neither');
  });

  it('takes exactly one way to authenticate', () => {
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_USER: 'u' }))).toContain('NATS_PASSWORD: required with NATS_USER');
    expect(problemsOf(() => loadConfig(NatsEnv, { NATS_TOKEN: 't', NATS_CREDS: join(dir, 'user.creds') }))).toContain('NATS_TOKEN, NATS_CREDS: set only one way to authenticate to NATS');
  });

  it('refuses production without credentials unless NATS_ALLOW_ANONYMOUS=true, and then asks for an authenticating server', () => {
    expect(problemsOf(() => loadConfig(NatsEnv, { NODE_ENV: 'production' }))).toMatch(/NATS_CREDS, NATS_NKEY_SEED_FILE, NATS_USER \+ NATS_PASSWORD, NATS_TOKEN: none is set.*NATS_ALLOW_ANONYMOUS=true/);
    expect(loadConfig(NatsEnv, { NODE_ENV: 'production', NATS_USER: 'u', NATS_PASSWORD: 'p' }).natsConnection('x').requireAuthenticatedServer).toBe(true);
    expect(loadConfig(NatsEnv, { NODE_ENV: 'production', NATS_URL: 'nats://u:p@n1:4222' }).natsConnection('x').requireAuthenticatedServer).toBe(true);
    const anonymous = loadConfig(NatsEnv, { NODE_ENV: 'production', NATS_ALLOW_ANONYMOUS: 'true' });
    expect(anonymous.natsConnection('x')).toMatchObject({ auth: undefined, requireAuthenticatedServer: false });
    expect(problemsOf(() => loadConfig(NatsEnv, { NODE_ENV: 'production', NATS_ALLOW_ANONYMOUS: 'false' }))).toMatch(/none is set/);
  });

  it('never shows the NATS password, token or URL credentials in its loggable form', () => {
    const shown = [
      redactedConfig(loadConfig(NatsEnv, { NATS_URL: 'nats://svc:secretpw@n1:4222,nats://svc:secretpw@n2:4222' })),
      redactedConfig(loadConfig(NatsEnv, { NATS_USER: 'u', NATS_PASSWORD: 'pw2-secret' })),
      redactedConfig(loadConfig(NatsEnv, { NATS_TOKEN: 'token3-secret' })),
    ].map((c) => JSON.stringify(c)).join('\n');
    expect(shown).not.toMatch(/secretpw|pw2-secret|token3-secret/);
    expect(shown).toContain('nats://***@n1:4222,nats://***@n2:4222');
  });
});

describe('RedisEnv', () => {
  it('targets REDIS_URL alone, or the primary that the sentinels name (password from REDIS_URL)', () => {
    expect(loadConfig(InvalidatorLikeEnv, { REDIS_URL: 'redis://10.0.0.5:6380' }).redisTarget).toEqual({ url: 'redis://10.0.0.5:6380' });
    const sentinel = loadConfig(InvalidatorLikeEnv, {
      REDIS_URL: 'redis://:cachepw@unused:6379/2',
      REDIS_SENTINELS: 's1.example:26379,10.0.0.7:26380',
      REDIS_SENTINEL_NAME: 'switchboard',
      REDIS_SENTINEL_PASSWORD: 'sentinelpw',
    });
    expect(sentinel.redisTarget).toEqual({
      url: 'redis://:cachepw@unused:6379/2',
      sentinels: [{ host: 's1.example', port: 26379 }, { host: '10.0.0.7', port: 26380 }],
      sentinelName: 'switchboard',
      sentinelPassword: 'sentinelpw',
    });
    expect(JSON.stringify(redactedConfig(sentinel))).not.toMatch(/cachepw|sentinelpw/);
  });

  it('stops on a malformed sentinel list, or on one of the two variables without the other', () => {
    expect(problemsOf(() => loadConfig(InvalidatorLikeEnv, { REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'm' }))).toMatch(/REDIS_SENTINELS must be host:port/);
    expect(problemsOf(() => loadConfig(InvalidatorLikeEnv, { REDIS_SENTINELS: 's1:26379' }))).toMatch(/REDIS_SENTINELS and REDIS_SENTINEL_NAME: set both/);
    expect(problemsOf(() => loadConfig(InvalidatorLikeEnv, { REDIS_SENTINEL_NAME: 'm' }))).toMatch(/set both/);
    expect(problemsOf(() => loadConfig(InvalidatorLikeEnv, { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'bad name' }))).toMatch(/REDIS_SENTINEL_NAME may hold/);
  });
});
