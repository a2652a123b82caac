import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { parseHeartbeat, SubjectSpace } from '@switchboard/contracts';
import { decodeJson, Msg, NatsClient, Subscription } from '@switchboard/messaging';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { SUBJECTS } from '../registry-api.tokens';
import { HeartbeatBatcherService } from './heartbeat-batcher.service';

/**
 * Heartbeats straight from services on `registry.heartbeat.<env>.<service>.<serviceId>`, shared
 * between registry-api replicas by a queue group. Invalid ones are counted and dropped; unknown
 * instances are counted when the batch is written.
 */
@Injectable()
export class HeartbeatHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatHandler.name);
  private subscription?: Subscription;

  constructor(
    private readonly nats: NatsClient,
    private readonly batcher: HeartbeatBatcherService,
    private readonly metrics: RegistryMetricsService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  onApplicationBootstrap(): void {
    this.subscription = this.nats.subscribe(this.subjects.heartbeatAll, (msg) => this.handle(msg), {
      queue: this.subjects.queueGroup('registry-api'),
    });
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }

  handle(msg: Msg): void {
    const now = new Date();
    this.metrics.heartbeatsReceived.inc({ transport: 'nats' });
    const target = this.subjects.parseHeartbeat(msg.subject);
    let body: unknown = {};
    try {
      if (msg.data.length) body = decodeJson(msg.data);
    } catch {
      body = undefined;
    }
    const parsed = target && body !== undefined ? parseHeartbeat(body) : undefined;
    if (!target || !parsed?.ok) {
      this.metrics.heartbeatsDropped.inc({ reason: 'invalid' });
      this.logger.debug(`invalid heartbeat on ${msg.subject}`);
      return;
    }
    this.batcher.enqueue(target.serviceId, parsed.value.metadata, now);
  }
}
