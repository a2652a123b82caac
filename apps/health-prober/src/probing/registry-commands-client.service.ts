import { Injectable, Logger } from '@nestjs/common';
import { CommandReply, HealthStatus, SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { ProberMetricsService } from '../observability/prober-metrics.service';

/**
 * The prober's only writes: commands to registry-api (the single writer) over NATS request/reply.
 * Each resolves to whether registry-api accepted it; a refusal or no answer is logged and counted,
 * and the caller tries again later.
 */
@Injectable()
export class RegistryCommandsClient {
  private readonly logger = new Logger(RegistryCommandsClient.name);

  constructor(
    private readonly nats: NatsClient,
    private readonly subjects: SubjectSpace,
    private readonly metrics: ProberMetricsService,
  ) {}

  /** `registry.cmd.reportHealth`: the reason is public (statusChanged event, REST API). */
  reportHealth(serviceId: string, status: HealthStatus, reason: string): Promise<boolean> {
    return this.command(this.subjects.reportHealthCommand, { serviceId, status, reason });
  }

  /** `registry.cmd.deregister`: pruning of an instance silent or failing for too long. */
  deregister(serviceId: string, reason: string): Promise<boolean> {
    return this.command(this.subjects.deregisterCommand, { serviceId, reason });
  }

  private async command(subject: string, payload: object): Promise<boolean> {
    try {
      const reply = await this.nats.request<CommandReply>(subject, payload, 5000);
      if (!reply.ok) this.logger.warn(`${subject} refused: ${reply.error.message}`);
      if (!reply.ok) this.metrics.reportFailures.inc();
      return reply.ok;
    } catch (error) {
      this.metrics.reportFailures.inc();
      this.logger.warn(`${subject} failed (registry-api unreachable?): ${(error as Error).message}`);
      return false;
    }
  }
}
