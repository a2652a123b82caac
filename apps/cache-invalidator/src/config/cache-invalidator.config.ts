import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { Secret } from '@switchboard/config';

/** Every variable cache-invalidator reads, validated once at boot. */
export class CacheInvalidatorConfig {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: string = 'development';

  @IsString()
  HOST: string = '0.0.0.0';

  @IsInt() @Min(0) @Max(65535)
  PORT: number = 3015;

  @IsString()
  NATS_URL: string = 'nats://127.0.0.1:4222';

  /** As registry-api's: the stream is `<prefix>_REGISTRY`, the subjects `<prefix>.registry.events.>`. */
  @Matches(/^[A-Za-z0-9_-]*$/, { message: 'SUBJECT_PREFIX may hold only letters, digits, "_" and "-"' })
  SUBJECT_PREFIX: string = '';

  /** May carry a password. */
  @Secret()
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL: string = 'redis://127.0.0.1:6379';

  /** Must equal registry-api's; unset, it is `<SUBJECT_PREFIX>:` when a subject prefix is set, else empty (registry-api's default too). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_:.-]*$/, { message: 'REDIS_KEY_PREFIX may hold only letters, digits and "_", ":", ".", "-"' })
  REDIS_KEY_PREFIX?: string = undefined;

  @IsInt() @Min(10) @Max(60_000)
  REDIS_COMMAND_TIMEOUT_MS: number = 500;

  /** How long an invalidation marker lives; at least the longest a registry-api read can take. */
  @IsInt() @Min(1) @Max(86_400)
  CACHE_TTL_SECONDS: number = 120;

  /** The durable JetStream consumer all replicas share. */
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'CONSUMER_NAME must be 1-64 letters, digits, "_" or "-"' })
  CONSUMER_NAME: string = 'cache-invalidator';

  @IsInt() @Min(1) @Max(100_000)
  CONSUMER_MAX_ACK_PENDING: number = 1000;

  /** An event a replica took and never acknowledged (it died) is redelivered after this. */
  @IsInt() @Min(500) @Max(600_000)
  CONSUMER_ACK_WAIT_MS: number = 5000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: string = 'info';

  get redisKeyPrefix(): string {
    return this.REDIS_KEY_PREFIX ?? (this.SUBJECT_PREFIX ? `${this.SUBJECT_PREFIX}:` : '');
  }
}
