import { Global, Module } from '@nestjs/common';
import { createRedisConnection, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { DISCOVERY_CACHE, REGISTRY_API_CONFIG } from '../registry-api.tokens';

/**
 * The Redis discovery cache adapter, used by DiscoveryCacheService in the registry module. It
 * connects in the background: registry-api starts, and answers from PostgreSQL, while Redis is away.
 */
@Global()
@Module({
  providers: [
    {
      provide: DISCOVERY_CACHE,
      inject: [REGISTRY_API_CONFIG],
      useFactory: (config: RegistryApiConfig): DiscoveryCacheRepository | null =>
        config.CACHE_ENABLED
          ? new DiscoveryCacheRepository(
              createRedisConnection({ ...config.redisTarget, keyPrefix: config.redisKeyPrefix, name: 'registry-api', commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS }),
              config.CACHE_TTL_SECONDS,
            )
          : null,
    },
  ],
  exports: [DISCOVERY_CACHE],
})
export class DiscoveryCacheModule {}
