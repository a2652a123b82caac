import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { TokenGuard } from '../auth/token.guard';
import { DiscoveryCacheService } from '../cache/discovery-cache.service';
import { HealthController } from '../health/health.controller';
import { HeartbeatBatcherService } from '../heartbeat/heartbeat-batcher.service';
import { HeartbeatHandler } from '../heartbeat/heartbeat.handler';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { ClockService } from './clock.service';
import { DiscoveryService } from './discovery.service';
import { ModelsController } from './models.controller';
import { RegistryController } from './registry.controller';
import { RegistryExceptionFilter } from './registry.exception';
import { RegistryService } from './registry.service';
import { RegistryCommandsHandler } from './registry-commands.handler';

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [ModelsController, RegistryController, HealthController],
  providers: [
    RegistryService,
    DiscoveryService,
    DiscoveryCacheService,
    OutboxRelayService,
    HeartbeatBatcherService,
    HeartbeatHandler,
    RegistryCommandsHandler,
    RegistryMetricsService,
    ClockService,
    { provide: APP_GUARD, useClass: TokenGuard },
    { provide: APP_FILTER, useClass: RegistryExceptionFilter },
  ],
  exports: [RegistryService, OutboxRelayService, HeartbeatBatcherService],
})
export class RegistryModule {}
