import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, metricsRegistry } from '@switchboard/observability';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** llm-router's Prometheus series, by model and instance. */
@Injectable()
export class RouterMetricsService {
  readonly requests = once('router_requests_total', () => new Counter({ name: 'router_requests_total', help: 'Requests answered, by model, instance and status code', labelNames: ['model', 'instance', 'code'] }));
  readonly errors = once('router_errors_total', () => new Counter({ name: 'router_errors_total', help: 'Requests answered with an error, by model and reason', labelNames: ['model', 'reason'] }));
  readonly retries = once('router_retries_total', () => new Counter({ name: 'router_retries_total', help: 'Attempts retried on another instance, by model and reason', labelNames: ['model', 'reason'] }));
  readonly ejections = once('router_ejections_total', () => new Counter({ name: 'router_ejections_total', help: 'Passive ejections of failing instances', labelNames: ['model', 'instance'] }));
  readonly panics = once('router_panic_total', () => new Counter({ name: 'router_panic_total', help: 'Picks made with every instance of a model ejected', labelNames: ['model'] }));
  readonly fallbacks = once('router_fallbacks_total', () => new Counter({ name: 'router_fallbacks_total', help: 'Requests served by a fallback model', labelNames: ['model', 'fallback'] }));
  readonly streamCuts = once('router_upstream_stream_errors_total', () => new Counter({ name: 'router_upstream_stream_errors_total', help: 'Responses cut by the backend after the first byte', labelNames: ['model', 'instance'] }));
  readonly errorBodiesTruncated = once('router_upstream_error_bodies_truncated_total', () =>
    new Counter({ name: 'router_upstream_error_bodies_truncated_total', help: 'Backend error bodies (5xx, 429) longer than the router reads; the rest was not read', labelNames: ['model'] }),
  );
  readonly clientAborts = once('router_client_aborts_total', () => new Counter({ name: 'router_client_aborts_total', help: 'Requests whose client went away; the upstream request was aborted', labelNames: ['model'] }));
  readonly duration = once('router_request_duration_seconds', () =>
    new Histogram({ name: 'router_request_duration_seconds', help: 'Whole request, as the client sees it', labelNames: ['model', 'instance'], buckets: LATENCY_BUCKETS }),
  );
  readonly ttft = once('router_time_to_first_token_seconds', () =>
    new Histogram({ name: 'router_time_to_first_token_seconds', help: 'Until the first byte of the answer reaches the client', labelNames: ['model', 'instance'], buckets: LATENCY_BUCKETS }),
  );
  readonly tableInstances = once('router_table_instances', () => new Gauge({ name: 'router_table_instances', help: 'Instances in the routing table' }));
  readonly tableRevision = once('router_table_revision', () => new Gauge({ name: 'router_table_revision', help: 'Highest registry revision applied' }));
}
