import { DynamicModule, Module } from '@nestjs/common';
import { ObservabilityModule } from '@switchboard/observability';
import { RoutingTableModule } from '@switchboard/routing-table';
import type { HealthProberConfig } from './config/health-prober.config';
import { HEALTH_PROBER_CONFIG, PROBER_CLOCK } from './health-prober.tokens';
import { HealthController } from './health/health.controller';
import { MembershipService } from './membership/membership.service';
import { ProberMetricsService } from './observability/prober-metrics.service';
import { ProberService } from './probing/prober.service';
import { RegistryCommandsClient } from './probing/registry-commands-client.service';
import { RunChecksHandler } from './probing/run-checks.handler';
import { SelfPreservationService } from './probing/self-preservation.service';

@Module({})
export class AppModule {
  static forRoot(config: HealthProberConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [
        ObservabilityModule.forRoot({ app: 'health-prober', logLevel: config.LOG_LEVEL }),
        RoutingTableModule.forRoot({
          nats: config.natsConnection('health-prober'),
          subjectPrefix: config.SUBJECT_PREFIX,
          driftCheckIntervalMs: config.DRIFT_CHECK_INTERVAL_MS,
          eventRevisionMaxAhead: config.EVENT_REVISION_MAX_AHEAD,
        }),
      ],
      controllers: [HealthController, RunChecksHandler],
      providers: [
        { provide: HEALTH_PROBER_CONFIG, useValue: config },
        { provide: PROBER_CLOCK, useValue: () => Date.now() },
        ProberMetricsService,
        MembershipService,
        ProberService,
        SelfPreservationService,
        RegistryCommandsClient,
      ],
      exports: [HEALTH_PROBER_CONFIG],
    };
  }
}
