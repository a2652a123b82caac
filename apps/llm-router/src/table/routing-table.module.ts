import { Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { RoutingTable } from '@switchboard/routing-table';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';

/** The NATS connection and the event-fed routing table, loaded before the router takes traffic. */
@Global()
@Module({
  providers: [
    {
      provide: NatsClient,
      inject: [LLM_ROUTER_CONFIG],
      useFactory: (config: LlmRouterConfig) => NatsClient.connect({ servers: config.NATS_URL, name: 'llm-router' }),
    },
    {
      provide: RoutingTable,
      inject: [LLM_ROUTER_CONFIG, NatsClient],
      useFactory: async (config: LlmRouterConfig, nats: NatsClient) => {
        const table = new RoutingTable({
          nats,
          subjects: new SubjectSpace(config.SUBJECT_PREFIX),
          driftCheckIntervalMs: config.DRIFT_CHECK_INTERVAL_MS,
          logger: new Logger(RoutingTable.name),
        });
        await table.start();
        return table;
      },
    },
  ],
  exports: [NatsClient, RoutingTable],
})
export class RoutingTableModule implements OnApplicationShutdown {
  constructor(
    @Inject(RoutingTable) private readonly table: RoutingTable,
    @Inject(NatsClient) private readonly nats: NatsClient,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.table.stop();
    await this.nats.close();
  }
}
