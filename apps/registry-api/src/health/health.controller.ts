import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { NatsClient } from '@switchboard/messaging';
import { RegistryRepository } from '@switchboard/persistence';

/** Ready when PostgreSQL answers and NATS is connected; 503 otherwise, naming what is down. */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly nats: NatsClient,
    private readonly repository: RegistryRepository,
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
    ]);
  }
}
