import { DynamicModule, Inject, Module, OnModuleInit, RequestMethod } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ObservabilityModule } from '@switchboard/observability';
import { RoutingTable, RoutingTableModule } from '@switchboard/routing-table';
import { ApiKeyGuard } from './auth/api-key.guard';
import { BalancerService } from './balancing/balancer.service';
import type { LlmRouterConfig } from './config/llm-router.config';
import { RoutingPolicyService } from './config/routing-policy.service';
import { HealthController } from './health/health.controller';
import { LLM_ROUTER_CONFIG } from './llm-router.tokens';
import { RouterMetricsService } from './observability/router-metrics.service';
import { CompletionsController } from './proxy/completions.controller';
import { DrainService } from './proxy/drain.service';
import { OpenAiErrorFilter } from './proxy/openai-error.exception';
import { ProxyService } from './proxy/proxy.service';

@Module({})
export class AppModule implements OnModuleInit {
  constructor(
    @Inject(RoutingTable) private readonly table: RoutingTable,
    private readonly balancer: BalancerService,
    private readonly metrics: RouterMetricsService,
  ) {}

  static forRoot(config: LlmRouterConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [
        // The proxy routes are the hot path: no per-request logger; their traffic is in the metrics,
        // their errors in the filter's log.
        ObservabilityModule.forRoot({ app: 'llm-router', logLevel: config.LOG_LEVEL, unloggedRoutes: [{ path: 'v1/*path', method: RequestMethod.ALL }] }),
        RoutingTableModule.forRoot({
          nats: config.natsConnection('llm-router'),
          subjectPrefix: config.SUBJECT_PREFIX,
          driftCheckIntervalMs: config.DRIFT_CHECK_INTERVAL_MS,
          eventRevisionMaxAhead: config.EVENT_REVISION_MAX_AHEAD,
        }),
      ],
      controllers: [CompletionsController, HealthController],
      providers: [
        { provide: LLM_ROUTER_CONFIG, useValue: config },
        RoutingPolicyService,
        BalancerService,
        RouterMetricsService,
        DrainService,
        ProxyService,
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: OpenAiErrorFilter },
      ],
      exports: [LLM_ROUTER_CONFIG],
    };
  }

  onModuleInit(): void {
    const refresh = () => {
      this.metrics.tableInstances.set(this.table.size);
      this.metrics.tableRevision.set(this.table.revision);
    };
    refresh();
    this.table.onChange(() => {
      refresh();
      this.balancer.retainKnown((id) => this.table.get(id) !== undefined);
      this.metrics.scheduleInstanceSweep((id) => this.table.get(id) !== undefined);
    });
  }
}
