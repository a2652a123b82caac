import { Inject, Injectable } from '@nestjs/common';
import { HeartbeatDto, SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { RegistryRepository } from '@switchboard/persistence';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { SUBJECTS } from '../registry-api.tokens';
import { ClockService } from '../registry/clock.service';
import { RegistryException } from '../registry/registry.exception';
import { plain } from '../writes/registration.util';
import { HeartbeatBatcherService } from './heartbeat-batcher.service';

/**
 * REST heartbeat: 404 for an unknown instance; otherwise queued for the batched write and
 * published on the same NATS subject services use, for the prober and the router.
 */
@Injectable()
export class RestHeartbeatService {
  constructor(
    private readonly repository: RegistryRepository,
    private readonly batcher: HeartbeatBatcherService,
    private readonly nats: NatsClient,
    private readonly metrics: RegistryMetricsService,
    private readonly clock: ClockService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  async heartbeat(serviceId: string, dto: HeartbeatDto, traceparent: string): Promise<{ serviceId: string; lastSeen: string }> {
    const existing = await this.repository.findById(serviceId);
    if (!existing) throw RegistryException.instanceNotFound(serviceId);
    const now = this.clock.now();
    this.metrics.heartbeatsReceived.inc({ transport: 'rest' });
    this.batcher.enqueue(serviceId, dto.metadata, now);
    try {
      this.nats.publish(this.subjects.heartbeat(existing.environment, existing.serviceName, serviceId), plain(dto), { traceparent });
    } catch {
      // NATS is down: the heartbeat is still persisted; listeners catch up on the next one.
    }
    return { serviceId, lastSeen: now.toISOString() };
  }
}
