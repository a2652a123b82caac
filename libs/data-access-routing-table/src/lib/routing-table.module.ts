import { DynamicModule, Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { messagesRejectedCounter, NatsClient, NatsClientOptions } from '@switchboard/messaging';
import { Counter, metricsRegistry } from '@switchboard/observability';
import { RoutingTable } from './routing-table.service';

export interface RoutingTableModuleOptions {
  /** The app's NATS connection (name, servers, credentials): its env class's `natsConnection(name)`. */
  nats: NatsClientOptions;
  subjectPrefix: string;
  driftCheckIntervalMs?: number;
  /** `EVENT_REVISION_MAX_AHEAD`: see RoutingTableOptions.eventRevisionMaxAhead. */
  eventRevisionMaxAhead?: number;
}

const REJECTED_METRIC = 'routing_table_events_rejected_total';

/** One series for every app holding a table (router, prober), whatever registers it first. */
function rejectedCounter(): Counter<'reason'> {
  return (
    (metricsRegistry.getSingleMetric(REJECTED_METRIC) as Counter<'reason'> | undefined) ??
    new Counter({ name: REJECTED_METRIC, help: 'Registry events not applied because the registry did not confirm their revision (forged?), by reason', labelNames: ['reason'] })
  );
}

/** Events and heartbeats the table refused (hostile, oversized, not UTF-8, invalid), by subscription pattern and reason. */
export function routingTableRejectionsCounter() {
  return messagesRejectedCounter('routing_table');
}

/**
 * A NATS connection and the event-fed registry table, loaded before the app takes traffic. Apps that
 * consume the registry (router, prober, SDK hosts) import it instead of wiring the pattern again.
 */
@Global()
@Module({})
export class RoutingTableModule implements OnApplicationShutdown {
  constructor(
    @Inject(RoutingTable) private readonly table: RoutingTable,
    @Inject(NatsClient) private readonly nats: NatsClient,
  ) {}

  static forRoot(options: RoutingTableModuleOptions): DynamicModule {
    return {
      module: RoutingTableModule,
      providers: [
        { provide: SubjectSpace, useValue: new SubjectSpace(options.subjectPrefix) },
        { provide: NatsClient, useFactory: () => NatsClient.connect(options.nats) },
        {
          provide: RoutingTable,
          inject: [NatsClient, SubjectSpace],
          useFactory: async (nats: NatsClient, subjects: SubjectSpace) => {
            const rejected = rejectedCounter();
            const table = new RoutingTable({
              nats,
              subjects,
              driftCheckIntervalMs: options.driftCheckIntervalMs,
              eventRevisionMaxAhead: options.eventRevisionMaxAhead,
              logger: new Logger(RoutingTable.name),
              onRejected: (reason) => rejected.inc({ reason }),
              messagesRejected: routingTableRejectionsCounter(),
            });
            await table.start();
            return table;
          },
        },
      ],
      exports: [SubjectSpace, NatsClient, RoutingTable],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    this.table.stop();
    await this.nats.close();
  }
}
