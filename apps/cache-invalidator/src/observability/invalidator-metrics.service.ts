import { Injectable } from '@nestjs/common';
import { Counter, Histogram, metricsRegistry } from '@switchboard/observability';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

/** cache-invalidator's Prometheus series (the process defaults come from ObservabilityModule). */
@Injectable()
export class InvalidatorMetricsService {
  readonly invalidations = once('cache_invalidations_total', () => new Counter({ name: 'cache_invalidations_total', help: 'Registry events applied to the cache, by kind', labelNames: ['kind'] }));
  readonly keys = once('cache_invalidated_keys_total', () =>
    new Counter({ name: 'cache_invalidated_keys_total', help: 'Keys an event affected, by result (replaced by a marker, or newer_kept)', labelNames: ['result'] }),
  );
  readonly lag = once('cache_invalidation_lag_seconds', () =>
    new Histogram({
      name: 'cache_invalidation_lag_seconds',
      help: "From the event's time (the write in registry-api) to its keys' replacement in Redis",
      buckets: [0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120],
    }),
  );
  readonly rejected = once('cache_invalidation_events_rejected_total', () =>
    new Counter({
      name: 'cache_invalidation_events_rejected_total',
      help: 'Events whose revision the registry did not confirm: ahead_of_registry (dropped, forged?) or unverifiable (redelivered later)',
      labelNames: ['reason'],
    }),
  );
  readonly errors = once('cache_invalidation_errors_total', () =>
    new Counter({ name: 'cache_invalidation_errors_total', help: 'Events not applied: redis (redelivered later) or invalid_event (dropped)', labelNames: ['reason'] }),
  );
}
