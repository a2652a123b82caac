import { Injectable } from '@nestjs/common';
import { messagesRejectedCounter } from '@switchboard/messaging';
import { Counter, Gauge, Histogram, metricsRegistry } from '@switchboard/observability';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

@Injectable()
export class ProberMetricsService {
  readonly probes = once('prober_probes_total', () => new Counter({ name: 'prober_probes_total', help: 'Health checks run, by outcome', labelNames: ['outcome'] }));
  readonly probeDuration = once('prober_probe_duration_seconds', () =>
    new Histogram({ name: 'prober_probe_duration_seconds', help: 'Duration of one health check', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5] }),
  );
  readonly reports = once('prober_reports_total', () => new Counter({ name: 'prober_reports_total', help: 'Health transitions reported to registry-api, by new status', labelNames: ['status'] }));
  readonly reportFailures = once('prober_report_failures_total', () => new Counter({ name: 'prober_report_failures_total', help: 'Reports registry-api did not accept (retried on the next check)' }));
  readonly pruned = once('prober_pruned_total', () => new Counter({ name: 'prober_pruned_total', help: 'Instances deregistered after a long silence or failure' }));
  readonly held = once('prober_held_transitions_total', () => new Counter({ name: 'prober_held_transitions_total', help: 'Downgrades not reported because of self-preservation', labelNames: ['environment'] }));
  readonly selfPreservation = once('prober_self_preservation', () => new Gauge({ name: 'prober_self_preservation', help: '1 while a mass failure in the environment is held as our own problem', labelNames: ['environment'] }));
  /** `prober.cmd.*` messages refused, by subscription pattern and reason (the table's own subjects count in routing_table_messages_rejected_total). */
  readonly messagesRejected = messagesRejectedCounter('prober');
  readonly roundRequests = once('prober_round_requests_total', () =>
    new Counter({ name: 'prober_round_requests_total', help: 'prober.cmd.runChecks requests: ran a round, coalesced into the next one, or shed (too many waiting)', labelNames: ['outcome'] }),
  );
  readonly owned = once('prober_owned_instances', () => new Gauge({ name: 'prober_owned_instances', help: 'Instances this replica checks' }));
  readonly members = once('prober_members', () => new Gauge({ name: 'prober_members', help: 'Live prober replicas sharing the work' }));
}
