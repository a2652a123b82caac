import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { BooleanFromEnv, ConfigValidationError, IsOneOf, Secret } from './env.config';
import { NatsConnectionSettings, resolveNatsConnection } from './nats-auth.util';

export const NODE_ENVS = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
export const PRODUCTION_SHUTDOWN_GRACE_MS = 25_000;

/**
 * What every app reads. An app's env class extends {@link NatsEnv} or {@link RedisEnv} (which
 * include this) and overrides the defaults that differ, e.g. `override PORT: number = 3013;` —
 * class inheritance keeps the decorators; redeclaring a property WITH decorators replaces them.
 */
export class BaseAppEnv {
  @IsOneOf(NODE_ENVS)
  NODE_ENV: NodeEnv = 'development';

  @IsString()
  HOST: string = '0.0.0.0';

  /** Each app overrides the default with its own documented port. */
  @IsInt() @Min(0) @Max(65535)
  PORT: number = 3000;

  @IsOneOf(LOG_LEVELS)
  LOG_LEVEL: string = 'info';

  /**
   * How long a SIGTERM/SIGINT shutdown may take before the app exits 1 anyway. Unset: 10 s, and 25 s in
   * production (under Kubernetes' default 30 s terminationGracePeriodSeconds, so the app, not SIGKILL, ends it).
   */
  @IsOptional() @IsInt() @Min(100) @Max(600_000)
  SHUTDOWN_GRACE_MS?: number = undefined;

  get isProduction(): boolean {
    return this.NODE_ENV === 'production';
  }

  get shutdownGraceMs(): number {
    return this.SHUTDOWN_GRACE_MS ?? (this.isProduction ? PRODUCTION_SHUTDOWN_GRACE_MS : DEFAULT_SHUTDOWN_GRACE_MS);
  }

  /**
   * Rules across variables, applied by `loadConfig` after each variable is valid on its own; each
   * problem names its variable. Subclasses add theirs to `super.crossFieldProblems()`.
   */
  crossFieldProblems(): string[] {
    return [];
  }
}

/** The NATS connection: servers, subject space and credentials (every app uses NATS). */
export class NatsEnv extends BaseAppEnv {
  /** Comma-separated servers. May carry `user:pass@`: logged only through `redactUrls`. */
  @IsString()
  NATS_URL: string = 'nats://127.0.0.1:4222';

  /** Prefix for every subject and the stream name; isolates deployments sharing one NATS. */
  @Matches(/^[A-Za-z0-9_-]*$/, { message: 'SUBJECT_PREFIX may hold only letters, digits, "_" and "-"' })
  SUBJECT_PREFIX: string = '';

  /** With NATS_PASSWORD: user/password authentication. */
  @IsOptional() @IsString()
  NATS_USER?: string = undefined;

  @Secret() @IsOptional() @IsString()
  NATS_PASSWORD?: string = undefined;

  @Secret() @IsOptional() @IsString()
  NATS_TOKEN?: string = undefined;

  /** Path of an nkey seed file (`SU…`). */
  @IsOptional() @IsString()
  NATS_NKEY_SEED_FILE?: string = undefined;

  /** Path of a JWT credentials file (`.creds`: user JWT + nkey seed). */
  @IsOptional() @IsString()
  NATS_CREDS?: string = undefined;

  /** CA bundle that signs the server's certificate (PEM file). */
  @IsOptional() @IsString()
  NATS_TLS_CA?: string = undefined;

  /** Client certificate for mutual TLS (PEM file), with NATS_TLS_KEY. */
  @IsOptional() @IsString()
  NATS_TLS_CERT?: string = undefined;

  @IsOptional() @IsString()
  NATS_TLS_KEY?: string = undefined;

  /** In production, connect without credentials or to a server that does not require auth only when this is true. */
  @BooleanFromEnv() @IsBoolean()
  NATS_ALLOW_ANONYMOUS: boolean = false;

  override crossFieldProblems(): string[] {
    return [...super.crossFieldProblems(), ...this.resolveNats('config-check').problems];
  }

  /**
   * What `NatsClient.connect` takes for this app's connection `name`: servers without credentials,
   * the one authentication method configured (files read now), TLS files, the inbox prefix.
   */
  natsConnection(name: string): NatsConnectionSettings {
    const { settings, problems } = this.resolveNats(name);
    if (problems.length) throw new ConfigValidationError(problems);
    return settings;
  }

  private resolveNats(name: string): { settings: NatsConnectionSettings; problems: string[] } {
    return resolveNatsConnection(this, name, this.isProduction && !this.NATS_ALLOW_ANONYMOUS);
  }
}

/** The Redis connection (the discovery cache); its apps use NATS too, hence the one line of inheritance. */
export class RedisEnv extends NatsEnv {
  /** May carry a password. */
  @Secret()
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL: string = 'redis://127.0.0.1:6379';

  /**
   * Prepended to every cache key, and must be the same in registry-api and cache-invalidator;
   * unset, it is `<SUBJECT_PREFIX>:` when a subject prefix is set (same isolation), else empty.
   */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_:.-]*$/, { message: 'REDIS_KEY_PREFIX may hold only letters, digits and "_", ":", ".", "-"' })
  REDIS_KEY_PREFIX?: string = undefined;

  /** A slower Redis command fails; apps override the default to fit what a failure costs them. */
  @IsInt() @Min(10) @Max(60_000)
  REDIS_COMMAND_TIMEOUT_MS: number = 500;

  /**
   * Redis Sentinel instead of one server: `host:port,…` of the sentinels, with REDIS_SENTINEL_NAME (the
   * master group's name). The primary is asked of the sentinels and followed through a failover;
   * REDIS_URL then gives only the password and database.
   */
  @IsOptional()
  @Matches(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, { message: 'REDIS_SENTINELS must be host:port[,host:port…]' })
  REDIS_SENTINELS?: string = undefined;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_.-]{1,128}$/, { message: 'REDIS_SENTINEL_NAME may hold only letters, digits and "_", ".", "-"' })
  REDIS_SENTINEL_NAME?: string = undefined;

  /** The sentinels' own password (`requirepass` in sentinel.conf), when they have one. */
  @Secret() @IsOptional() @IsString()
  REDIS_SENTINEL_PASSWORD?: string = undefined;

  get redisKeyPrefix(): string {
    return this.REDIS_KEY_PREFIX ?? (this.SUBJECT_PREFIX ? `${this.SUBJECT_PREFIX}:` : '');
  }

  /** Where the cache's connection goes: REDIS_URL, or the primary the sentinels name. */
  get redisTarget(): RedisTarget {
    if (!this.REDIS_SENTINELS || !this.REDIS_SENTINEL_NAME) return { url: this.REDIS_URL };
    const sentinels = this.REDIS_SENTINELS.split(',').map((entry) => {
      const at = entry.lastIndexOf(':');
      return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
    });
    return { url: this.REDIS_URL, sentinels, sentinelName: this.REDIS_SENTINEL_NAME, sentinelPassword: this.REDIS_SENTINEL_PASSWORD };
  }

  override crossFieldProblems(): string[] {
    const problems = super.crossFieldProblems();
    if (!this.REDIS_SENTINELS !== !this.REDIS_SENTINEL_NAME) problems.push('REDIS_SENTINELS and REDIS_SENTINEL_NAME: set both (Sentinel) or neither (REDIS_URL alone)');
    return problems;
  }
}

/** A Redis connection's target: one server, or a Sentinel-monitored primary (`createRedisConnection` takes it). */
export interface RedisTarget {
  /** Password and database (and the server itself without sentinels). */
  url: string;
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  sentinelPassword?: string;
}
