import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { type LoadFigures, SUBJECT_TOKEN_PATTERN } from '@switchboard/contracts';
import { LogThrottle } from '@switchboard/observability';
import { HeartbeatWrite, RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';

/**
 * Coalesces heartbeats per instance in memory and persists them as one UPDATE per interval
 * (never one per heartbeat): at 20,000 heartbeats/s from 1,000 instances that is 1,000 rows per
 * statement, five statements a second. Heartbeats do not take a revision: they are liveness and
 * load, not registry state, and they reach the router and prober on the NATS subject directly.
 *
 * Memory is bounded by `HEARTBEAT_MAX_PENDING` instances: ids are checked before they take a slot (the
 * subject is anyone's to publish on), and while the database is down a failed batch is put back only
 * into free slots. What does not fit is shed and counted (`reason="overflow"`): a live instance's next
 * heartbeat brings it back within its interval.
 */
const SHED_WARNING_INTERVAL_MS = 10_000;

@Injectable()
export class HeartbeatBatcherService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatBatcherService.name);
  private pending = new Map<string, HeartbeatWrite>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private readonly shedWarning = new LogThrottle(SHED_WARNING_INTERVAL_MS);

  constructor(
    private readonly repository: RegistryRepository,
    private readonly metrics: RegistryMetricsService,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.flush(), this.config.HEARTBEAT_FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  enqueue(serviceId: string, load: LoadFigures | undefined, at: Date): void {
    const previous = this.pending.get(serviceId);
    if (previous) {
      if (at > previous.lastSeen) previous.lastSeen = at;
      if (load) Object.assign(previous.load, load);
    } else {
      // Not an id registration would accept: it cannot name an instance, so it takes no slot.
      if (!SUBJECT_TOKEN_PATTERN.test(serviceId)) {
        this.metrics.heartbeatsDropped.inc({ reason: 'invalid' });
        return;
      }
      if (this.pending.size >= this.config.HEARTBEAT_MAX_PENDING) {
        this.shed(1);
        return;
      }
      this.pending.set(serviceId, { serviceId, lastSeen: at, load: { ...load } });
      if (this.pending.size >= this.config.HEARTBEAT_MAX_BATCH) void this.flush();
    }
  }

  /** Writes everything pending; concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.pending.size) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = this.write(batch).finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private async write(batch: HeartbeatWrite[]): Promise<void> {
    const stop = this.metrics.heartbeatFlush.startTimer();
    try {
      const known = await this.repository.applyHeartbeats(batch);
      this.metrics.heartbeatsPersisted.inc(known.size);
      const unknown = batch.length - known.size;
      if (unknown) {
        this.metrics.heartbeatsDropped.inc({ reason: 'unknown_instance' }, unknown);
        this.logger.debug(`dropped heartbeats of ${unknown} unknown instance(s)`);
      }
    } catch (error) {
      // Put them back (unless newer ones arrived) so the next interval retries, as far as there is room.
      let shed = 0;
      for (const write of batch) {
        if (this.pending.has(write.serviceId)) continue;
        if (this.pending.size < this.config.HEARTBEAT_MAX_PENDING) this.pending.set(write.serviceId, write);
        else shed++;
      }
      if (shed) this.shed(shed);
      this.logger.warn(`heartbeat batch of ${batch.length} not written, will retry: ${(error as Error).message}`);
    } finally {
      stop();
    }
  }

  private shed(count: number): void {
    this.metrics.heartbeatsDropped.inc({ reason: 'overflow' }, count);
    if (this.shedWarning.take() === undefined) return;
    this.logger.warn(`${this.pending.size} instances' heartbeats already wait for a write (HEARTBEAT_MAX_PENDING): shedding the rest until the database takes them`);
  }
}
