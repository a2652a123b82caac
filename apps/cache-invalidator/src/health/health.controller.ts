import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { CacheInvalidationHandler, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { NatsClient } from '@switchboard/messaging';

/**
 * Healthy when NATS and Redis are reachable and the durable consumer is pulling; 503 otherwise,
 * naming what is down. `consumer` shows the backlog (pending + unacknowledged): after an outage,
 * it falls to zero as the invalidator catches up.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly nats: NatsClient,
    private readonly cache: DiscoveryCacheRepository,
    private readonly handler: CacheInvalidationHandler,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => {
        const indicator = this.indicators.check('nats');
        return this.nats.isConnected ? indicator.up() : indicator.down({ message: 'not connected; events wait on the stream' });
      },
      () => {
        const indicator = this.indicators.check('redis');
        const writable = this.cache.ready && this.handler.status.redisWritable;
        return writable ? indicator.up() : indicator.down({ message: 'unreachable; events stay unacknowledged and are redelivered' });
      },
      async () => {
        const indicator = this.indicators.check('consumer');
        const status = this.handler.status;
        const details = { consuming: status.consuming, handled: status.handled, ...(await this.handler.backlog()) };
        return status.consuming ? indicator.up(details) : indicator.down(details);
      },
    ]);
  }
}
