import { IsInt, Matches, Max, Min } from 'class-validator';
import { RedisEnv } from '@switchboard/config';

/** Every variable cache-invalidator reads, validated once at boot. */
export class CacheInvalidatorConfig extends RedisEnv {
  override PORT: number = 3015;

  /** Writes are off the request path, so a Redis command may take longer than registry-api's reads. */
  override REDIS_COMMAND_TIMEOUT_MS: number = 500;

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

  /**
   * A registry event further than this past the highest revision known to be real (snapshot, registry
   * answer) waits for the registry to confirm it, and is rejected (forged?) if it has not reached it.
   */
  @IsInt() @Min(1) @Max(1_000_000_000)
  EVENT_REVISION_MAX_AHEAD: number = 1000;
}
