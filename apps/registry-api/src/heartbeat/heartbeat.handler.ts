import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { HeartbeatDto, parseHeartbeat, SubjectSpace } from '@switchboard/contracts';
import { decodeJsonObject, MAX_HEARTBEAT_BYTES, MessageRejected, Msg, NatsClient, Subscription } from '@switchboard/messaging';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { SUBJECTS } from '../registry-api.tokens';
import { HeartbeatBatcherService } from './heartbeat-batcher.service';

/**
 * Heartbeats straight from services on `registry.heartbeat.<env>.<service>.<serviceId>`, shared
 * between registry-api replicas by a queue group. Invalid ones are counted and dropped (and
 * `registry_messages_rejected_total` says why); unknown instances are counted when the batch is written.
 * A raw subscription, not an @EventPattern handler like the commands: Nest's per-message pipeline cost
 * 2.5× the CPU per beat in bench:registry (ARCHITECTURE.md "Messaging").
 */
@Injectable()
export class HeartbeatHandler implements OnApplicationBootstrap, OnApplicationShutdown {
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
      rejections: this.metrics.messagesRejected,
    });
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }

  handle(msg: Msg): void {
    const now = new Date();
    this.metrics.heartbeatsReceived.inc({ transport: 'nats' });
    const target = this.subjects.parseHeartbeat(msg.subject);
    let metadata: HeartbeatDto['metadata'];
    try {
      if (!target) throw new MessageRejected('invalid', 'not a heartbeat subject');
      // An empty heartbeat is a plain "alive".
      const parsed = parseHeartbeat(msg.data.length ? decodeJsonObject(msg.data, MAX_HEARTBEAT_BYTES) : {});
      if (!parsed.ok) throw new MessageRejected('invalid', `invalid heartbeat: ${parsed.errors.map((e) => e.reason).join('; ')}`);
      metadata = parsed.value.metadata;
    } catch (error) {
      // Counted here too, so the heartbeat series stay whole; NatsClient counts the reason and logs.
      this.metrics.heartbeatsDropped.inc({ reason: 'invalid' });
      throw error;
    }
    this.batcher.enqueue(target.serviceId, metadata, now);
  }
}
