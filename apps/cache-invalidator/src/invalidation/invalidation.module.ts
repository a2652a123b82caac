import { Global, Inject, Logger, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { CacheInvalidationHandler, createRedisConnection, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { NatsClient } from '@switchboard/messaging';
import type { CacheInvalidatorConfig } from '../config/cache-invalidator.config';
import { CACHE_INVALIDATOR_CONFIG } from '../cache-invalidator.tokens';
import { InvalidatorMetricsService } from '../observability/invalidator-metrics.service';

/**
 * NATS, Redis and the durable consumer between them. Consuming starts once the app is up and
 * stops before the connections close, so the event in hand is finished or left unacknowledged.
 */
@Global()
@Module({
  providers: [
    InvalidatorMetricsService,
    {
      provide: NatsClient,
      inject: [CACHE_INVALIDATOR_CONFIG],
      useFactory: (config: CacheInvalidatorConfig) => NatsClient.connect(config.natsConnection('cache-invalidator')),
    },
    {
      provide: DiscoveryCacheRepository,
      inject: [CACHE_INVALIDATOR_CONFIG],
      useFactory: (config: CacheInvalidatorConfig) => {
        const redis = createRedisConnection({ ...config.redisTarget, keyPrefix: config.redisKeyPrefix, name: 'cache-invalidator', commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS });
        // Failed writes are logged by the handler, once per outage; reconnect attempts need not be.
        redis.on('error', () => undefined);
        return new DiscoveryCacheRepository(redis, config.CACHE_TTL_SECONDS);
      },
    },
    {
      provide: CacheInvalidationHandler,
      inject: [CACHE_INVALIDATOR_CONFIG, NatsClient, DiscoveryCacheRepository, InvalidatorMetricsService],
      useFactory: (config: CacheInvalidatorConfig, nats: NatsClient, cache: DiscoveryCacheRepository, metrics: InvalidatorMetricsService) =>
        new CacheInvalidationHandler({
          nats,
          cache,
          subjects: new SubjectSpace(config.SUBJECT_PREFIX),
          durableName: config.CONSUMER_NAME,
          maxAckPending: config.CONSUMER_MAX_ACK_PENDING,
          ackWaitMs: config.CONSUMER_ACK_WAIT_MS,
          eventRevisionMaxAhead: config.EVENT_REVISION_MAX_AHEAD,
          logger: new Logger(CacheInvalidationHandler.name),
          onInvalidated: (outcome) => {
            metrics.invalidations.inc({ kind: outcome.kind });
            metrics.keys.inc({ result: 'replaced' }, outcome.replaced);
            metrics.keys.inc({ result: 'newer_kept' }, outcome.keys - outcome.replaced);
            metrics.lag.observe(Math.max(0, outcome.lagMs) / 1000);
          },
          onFailure: (reason) => metrics.errors.inc({ reason }),
          onRejected: (reason) => metrics.rejected.inc({ reason }),
        }),
    },
  ],
  exports: [NatsClient, DiscoveryCacheRepository, CacheInvalidationHandler, InvalidatorMetricsService],
})
export class InvalidationModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(CacheInvalidationHandler) private readonly handler: CacheInvalidationHandler,
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(DiscoveryCacheRepository) private readonly cache: DiscoveryCacheRepository,
  ) {}

  onApplicationBootstrap(): void {
    this.handler.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handler.stop();
    await this.nats.close();
    this.cache.redis.disconnect();
  }
}
