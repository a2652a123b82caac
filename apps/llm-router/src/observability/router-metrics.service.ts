import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Counter, Gauge, Histogram, metricsRegistry } from '@switchboard/observability';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Table changes come in bursts; one sweep of the instance series a second is enough. */
const INSTANCE_SWEEP_DELAY_MS = 1000;

/** What the sweep needs of a labelled metric (counters and histograms alike). */
interface InstanceLabelled {
  get(): Promise<{ values: { labels: Record<string, string | number | undefined> }[] }>;
  remove(labels: Record<string, string | number>): void;
}

/** The series one answered request touches, bound once per (model, instance): no label objects per request. */
export interface InstanceSeries {
  ttft: { observe(seconds: number): void };
  duration: { observe(seconds: number): void };
  answered(statusCode: number): void;
}

/**
 * llm-router's Prometheus series, by model and instance. Instances come and go, so the series of one
 * gone from the routing table are dropped (`sweepInstances`): the `instance` label is bounded by the
 * table, not by every instance the router ever served.
 */
@Injectable()
export class RouterMetricsService implements OnApplicationShutdown {
  private sweepTimer?: NodeJS.Timeout;
  /** By model, then instance. */
  private readonly bound = new Map<string, Map<string, InstanceSeries>>();

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
  readonly instanceSeriesDropped = once('router_instance_series_dropped_total', () =>
    new Counter({ name: 'router_instance_series_dropped_total', help: 'Series labelled with an instance no longer in the routing table, dropped' }),
  );
  readonly tableInstances = once('router_table_instances', () => new Gauge({ name: 'router_table_instances', help: 'Instances in the routing table' }));
  readonly tableRevision = once('router_table_revision', () => new Gauge({ name: 'router_table_revision', help: 'Highest registry revision applied' }));

  seriesOf(model: string, instance: string): InstanceSeries {
    let byInstance = this.bound.get(model);
    if (!byInstance) this.bound.set(model, (byInstance = new Map()));
    let series = byInstance.get(instance);
    if (!series) {
      const labels = { model, instance };
      const codes = new Map<number, { inc(): void }>();
      const requests = this.requests;
      series = {
        ttft: this.ttft.labels(labels),
        duration: this.duration.labels(labels),
        answered(statusCode) {
          let counter = codes.get(statusCode);
          if (!counter) codes.set(statusCode, (counter = requests.labels({ ...labels, code: String(statusCode) })));
          counter.inc();
        },
      };
      byInstance.set(instance, series);
    }
    return series;
  }

  /** Sweeps soon (coalescing a burst of table changes into one pass). */
  scheduleInstanceSweep(isKnown: (serviceId: string) => boolean): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      void this.sweepInstances(isKnown);
    }, INSTANCE_SWEEP_DELAY_MS);
    this.sweepTimer.unref();
  }

  /** Drops every series whose instance `isKnown` denies; returns how many. */
  async sweepInstances(isKnown: (serviceId: string) => boolean): Promise<number> {
    for (const byInstance of this.bound.values()) {
      for (const instance of byInstance.keys()) if (!isKnown(instance)) byInstance.delete(instance);
    }
    let dropped = 0;
    for (const metric of [this.requests, this.ejections, this.streamCuts, this.duration, this.ttft] as unknown as InstanceLabelled[]) {
      const gone = new Map<string, Record<string, string | number>>();
      for (const { labels } of (await metric.get()).values) {
        if (labels['instance'] === undefined || isKnown(String(labels['instance']))) continue;
        // A histogram's bucket lines add `le`; the series is named without it.
        const series = Object.fromEntries(Object.entries(labels).filter((e): e is [string, string | number] => e[0] !== 'le' && e[1] !== undefined));
        gone.set(JSON.stringify(series), series);
      }
      for (const series of gone.values()) metric.remove(series);
      dropped += gone.size;
    }
    if (dropped) this.instanceSeriesDropped.inc(dropped);
    return dropped;
  }

  onApplicationShutdown(): void {
    clearTimeout(this.sweepTimer);
  }
}
