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
import { ModelRegistryService } from '../models/model-registry.service';
import { ModelsController } from '../models/models.controller';
import { HealthChecksController } from '../prober/health-checks.controller';
import { ProberClient } from '../prober/prober-client.service';
import { RegistryQueries } from '../queries/registry-queries.service';
import { RestHeartbeatService } from '../heartbeat/rest-heartbeat.service';
import { RegistryWriter } from '../writes/registry-writer.service';
import { EndpointPolicy } from './endpoint-policy.service';
import { InstanceRegistryService } from './instance-registry.service';
import { RegistryController } from './registry.controller';
import { RegistryExceptionFilter } from './registry.exception';
import { RegistryCommandsHandler } from './registry-commands.handler';
import { TombstonePrunerService } from '../writes/tombstone-pruner.service';

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [ModelsController, RegistryController, HealthChecksController, HealthController, RegistryCommandsHandler],
  providers: [
    RegistryWriter,
    InstanceRegistryService,
    EndpointPolicy,
    ModelRegistryService,
    RegistryQueries,
    RestHeartbeatService,
    ProberClient,
    DiscoveryService,
    DiscoveryCacheService,
    OutboxRelayService,
    HeartbeatBatcherService,
    HeartbeatHandler,
    TombstonePrunerService,
    RegistryMetricsService,
    ClockService,
    { provide: APP_GUARD, useClass: TokenGuard },
    { provide: APP_FILTER, useClass: RegistryExceptionFilter },
  ],
  exports: [RegistryWriter, RegistryQueries, OutboxRelayService, HeartbeatBatcherService],
})
export class RegistryModule {}
