import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { trackShutdownWork } from '@switchboard/config';
import { NatsClient } from '@switchboard/messaging';
import { ClaimedOutboxRow, RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';

const MAX_BACKOFF_MS = 5000;

/**
 * Gets committed outbox rows onto JetStream, then deletes them. Two paths:
 * - **fast**: the writer hands its rows over right after commit ({@link publishCommitted}); they go
 *   out at once, with no database round trip before the publish, and are deleted after the ack;
 * - **sweep**: every OUTBOX_SWEEP_INTERVAL_MS, rows older than OUTBOX_SWEEP_MIN_AGE_MS are claimed
 *   with FOR UPDATE SKIP LOCKED (safe with several replicas), published and deleted. It covers a
 *   crash between commit and publish, a NATS outage, and rows of a replica that died.
 * Both may publish the same row; `Nats-Msg-Id` = revision makes JetStream drop the second copy.
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
  private readonly inFlight = new Set<Promise<void>>();
  private published: number[] = [];
  private deleting?: Promise<void>;

  constructor(
    private readonly repository: RegistryRepository,
    private readonly nats: NatsClient,
    private readonly metrics: RegistryMetricsService,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {
    metrics.readOutboxDepthFrom(() => repository.outboxDepth());
  }

  onApplicationBootstrap(): void {
    this.sweep = setInterval(() => this.wake(), this.config.OUTBOX_SWEEP_INTERVAL_MS);
    this.sweep.unref();
    this.wake();
  }

  /**
   * Runs after the HTTP server has stopped taking writes and before NATS closes (MessagingModule is
   * global, so its hook comes after this module's): a final sweep of every committed row, whatever
   * its age, so a row whose publish failed leaves with this replica instead of waiting for another
   * one or the next start. SHUTDOWN_GRACE_MS bounds it (the process exits 1 if NATS cannot take it).
   */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweep);
    await trackShutdownWork('final outbox sweep', this.flush());
    this.stopped = true;
    clearInterval(this.sweep);
    clearTimeout(this.retry);
    await this.running;
  }

  /** The fast path: publish rows the caller has just committed. Never throws; failures fall to the sweep. */
  publishCommitted(rows: ClaimedOutboxRow[]): void {
    if (!rows.length || this.stopped) return;
    const task = this.publish(rows).then(
      () => {
        this.published.push(...rows.map((r) => r.id));
        this.deleting ??= this.deletePublished();
      },
      () => this.metrics.publishFailures.inc(),
    );
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  /** Asks for a sweep; coalesces with one already running. */
  wake(minAgeMs = this.config.OUTBOX_SWEEP_MIN_AGE_MS): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain(minAgeMs).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves once everything committed so far has been published (or a publish failed). For shutdown and tests. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    while (this.deleting) await this.deleting;
    while (this.running) await this.running;
    this.wake(0);
    while (this.running) await this.running;
  }

  private async deletePublished(): Promise<void> {
    try {
      while (this.published.length) {
        const ids = this.published;
        this.published = [];
        await this.repository.deleteOutbox(ids).catch((error: Error) => {
          // Left in place, they are re-published by the sweep and dropped as duplicates.
          this.logger.warn(`could not delete ${ids.length} published outbox row(s): ${error.message}`);
        });
      }
    } finally {
      this.deleting = undefined;
    }
  }

  private async drain(minAgeMs: number): Promise<void> {
    try {
      while (!this.stopped && (await this.repository.claimOutbox(this.config.OUTBOX_BATCH_SIZE, minAgeMs, (rows) => this.publish(rows))) > 0) {
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
    // Pipelined on one connection, so the stream stores them in this order; consumers compare
    // revisions anyway.
    await Promise.all(rows.map((row) => this.nats.publishToStream(row.subject, row.payload, { msgID: String(row.revision), headers: row.headers })));
    const now = Date.now();
    for (const row of rows) this.metrics.publishLag.observe((now - row.createdAt.getTime()) / 1000);
    this.metrics.eventsPublished.inc(rows.length);
  }
}
