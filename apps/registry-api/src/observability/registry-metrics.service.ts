import { Injectable } from '@nestjs/common';
import { messagesRejectedCounter } from '@switchboard/messaging';
import { Counter, Gauge, Histogram, metricsRegistry } from '@switchboard/observability';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Where `registry_outbox_depth` reads from at a scrape (the outbox relay sets it; the last one set wins). */
let outboxDepthSource: (() => Promise<number>) | undefined;
const OUTBOX_DEPTH_SCRAPE_TIMEOUT_MS = 1000;

/** registry-api's own Prometheus series (the process defaults come from ObservabilityModule). */
@Injectable()
export class RegistryMetricsService {
  readonly writes = once('registry_writes_total', () => new Counter({ name: 'registry_writes_total', help: 'Registry changes committed, by event kind', labelNames: ['kind'] }));
  readonly writeBatchSize = once('registry_write_batch_size', () =>
    new Histogram({ name: 'registry_write_batch_size', help: 'Changes per group-commit transaction', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256] }),
  );
  readonly writeBatchFallbacks = once('registry_write_batch_fallbacks_total', () =>
    new Counter({ name: 'registry_write_batch_fallbacks_total', help: 'Group-commit batches the database refused, retried one change per transaction' }),
  );
  readonly eventsPublished = once('registry_events_published_total', () => new Counter({ name: 'registry_events_published_total', help: 'Events acknowledged by JetStream' }));
  readonly publishFailures = once('registry_outbox_publish_failures_total', () => new Counter({ name: 'registry_outbox_publish_failures_total', help: 'Outbox batches that failed to publish and will be retried' }));
  readonly publishLag = once('registry_outbox_publish_lag_seconds', () =>
    new Histogram({
      name: 'registry_outbox_publish_lag_seconds',
      help: 'Time from the outbox write to the JetStream ack',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 30],
    }),
  );
  /**
   * Rows in the outbox (every replica's: one table), counted at each scrape; NaN when PostgreSQL does not
   * answer within a second, so a scrape never waits on a database outage.
   */
  readonly outboxDepth = once('registry_outbox_depth', () =>
    new Gauge({
      name: 'registry_outbox_depth',
      help: 'Committed changes whose event JetStream has not acknowledged yet (outbox rows, all replicas)',
      async collect() {
        if (!outboxDepthSource) return;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(Number.NaN), OUTBOX_DEPTH_SCRAPE_TIMEOUT_MS)));
        this.set(await Promise.race([outboxDepthSource().catch(() => Number.NaN), timeout]));
        clearTimeout(timer);
      },
    }),
  );
  readonly heartbeatsReceived = once('registry_heartbeats_received_total', () => new Counter({ name: 'registry_heartbeats_received_total', help: 'Heartbeats received, by transport', labelNames: ['transport'] }));
  readonly heartbeatsDropped = once('registry_heartbeats_dropped_total', () => new Counter({ name: 'registry_heartbeats_dropped_total', help: 'Heartbeats dropped, by reason', labelNames: ['reason'] }));
  readonly heartbeatsPersisted = once('registry_heartbeats_persisted_total', () => new Counter({ name: 'registry_heartbeats_persisted_total', help: 'Instance rows whose lastSeen was written' }));
  readonly heartbeatFlush = once('registry_heartbeat_flush_seconds', () =>
    new Histogram({ name: 'registry_heartbeat_flush_seconds', help: 'Duration of one batched heartbeat write', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] }),
  );
  readonly cacheHits = once('registry_cache_hits_total', () => new Counter({ name: 'registry_cache_hits_total', help: 'Discovery cache reads answered from Redis, by lookup (discovery, model)', labelNames: ['lookup'] }));
  readonly cacheMisses = once('registry_cache_misses_total', () =>
    new Counter({ name: 'registry_cache_misses_total', help: 'Discovery cache reads that went to PostgreSQL, by lookup and reason (absent, invalidated, redis_down, error)', labelNames: ['lookup', 'reason'] }),
  );
  readonly discoveryCursorsEvicted = once('registry_discovery_cursors_evicted_total', () =>
    new Counter({ name: 'registry_discovery_cursors_evicted_total', help: 'Round-robin cursors of discovery forgotten (least recently used) to stay within the limit' }),
  );
  readonly cacheFills = once('registry_cache_fills_total', () =>
    new Counter({ name: 'registry_cache_fills_total', help: 'Values offered to the cache after a miss, by outcome (stored, newer_kept, writer_in_flight)', labelNames: ['outcome'] }),
  );
  readonly cacheErrors = once('registry_cache_errors_total', () => new Counter({ name: 'registry_cache_errors_total', help: 'Failed Redis commands (the read fell back to PostgreSQL), by operation', labelNames: ['op'] }));
  /** Heartbeats and commands refused on NATS, by subscription pattern and reason. */
  readonly messagesRejected = messagesRejectedCounter('registry');
  readOutboxDepthFrom(source: () => Promise<number>): void {
    outboxDepthSource = source;
  }
  readonly redisUp = once('registry_cache_redis_up', () => new Gauge({ name: 'registry_cache_redis_up', help: '1 while Redis answers, 0 during an outage (discovery served from PostgreSQL)' }));
}
