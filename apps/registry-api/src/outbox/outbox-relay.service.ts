import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { NatsClient } from '@switchboard/messaging';
import { ClaimedOutboxRow, RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';

const MAX_BACKOFF_MS = 5000;

/**
 * Publishes committed outbox rows to JetStream, then deletes them. Woken by {@link wake} right
 * after a commit, so events leave within milliseconds; a periodic sweep covers a crash between
 * commit and wake, and rows written by other replicas. Rows are claimed with SKIP LOCKED, so
 * several replicas relay safely; `Nats-Msg-Id` = revision makes a re-publish a no-op.
 */
@Injectable()
export class OutboxRelayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelayService.name);
  private running?: Promise<void>;
  private again = false;
  private sweep?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly repository: RegistryRepository,
    private readonly nats: NatsClient,
    private readonly metrics: RegistryMetricsService,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.sweep = setInterval(() => this.wake(), this.config.OUTBOX_SWEEP_INTERVAL_MS);
    this.sweep.unref();
    this.wake();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweep);
    clearTimeout(this.retry);
    await this.running;
  }

  /** Asks for a drain; coalesces with one already running. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves once the outbox is empty (or a publish failed). For shutdown and tests. */
  async flush(): Promise<void> {
    this.wake();
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped && (await this.repository.claimOutbox(this.config.OUTBOX_BATCH_SIZE, (rows) => this.publish(rows))) > 0) {
        // keep going while there is more
      }
      if (this.failures) this.logger.log(`outbox relay recovered after ${this.failures} failed attempt(s)`);
      this.failures = 0;
    } catch (error) {
      this.failures++;
      this.metrics.publishFailures.inc();
      const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(this.failures, 6));
      if (this.failures === 1 || this.failures % 20 === 0) {
        this.logger.warn(`outbox relay cannot publish (attempt ${this.failures}, retry in ${delay} ms): ${(error as Error).message}`);
      }
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.wake(), delay);
      this.retry.unref();
    }
  }

  private async publish(rows: ClaimedOutboxRow[]): Promise<void> {
    // Pipelined on one connection, so the stream stores them in outbox order; consumers compare
    // revisions anyway.
    await Promise.all(rows.map((row) => this.nats.publishToStream(row.subject, row.payload, { msgID: String(row.revision), headers: row.headers })));
    const now = Date.now();
    for (const row of rows) this.metrics.publishLag.observe((now - row.createdAt.getTime()) / 1000);
    this.metrics.eventsPublished.inc(rows.length);
  }
}
