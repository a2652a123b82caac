import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { NatsClient } from '@switchboard/messaging';
import { RegistryRepository } from '@switchboard/persistence';
import { DiscoveryCacheService } from '../cache/discovery-cache.service';

/** Ready when PostgreSQL answers and NATS is connected; 503 otherwise, naming what is down. Redis is reported, never required. */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly nats: NatsClient,
    private readonly repository: RegistryRepository,
    private readonly cache: DiscoveryCacheService,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.db.pingCheck('database', { timeout: 2000 }),
      () => {
        const indicator = this.indicators.check('nats');
        return this.nats.isConnected ? indicator.up() : indicator.down({ message: 'not connected; events wait in the outbox' });
      },
      async () => {
        const indicator = this.indicators.check('outbox');
        return indicator.up({ pending: await this.repository.outboxDepth() });
      },
      async () => {
        // Redis only accelerates discovery: without it registry-api is fully functional, so the
        // entry reports Redis' state but never makes the app unready (terminus' status stays up).
        const indicator = this.indicators.check('redis');
        const state = await this.cache.probe();
        return indicator.up(state === 'down' ? { state, degraded: true, message: 'unreachable: discovery is answered from PostgreSQL' } : { state });
      },
    ]);
  }
}
