import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { encodeJson, NatsClient, Subscription } from '@switchboard/messaging';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { ProberService, RoundQueueFullError } from './prober.service';

/** `prober.cmd.runChecks` (behind `POST …/health-checks`): one replica of the queue group answers. */
@Injectable()
export class RunChecksHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RunChecksHandler.name);
  private subscription?: Subscription;

  constructor(
    private readonly nats: NatsClient,
    private readonly subjects: SubjectSpace,
    private readonly prober: ProberService,
    private readonly metrics: ProberMetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.subscription = this.nats.subscribe(
      this.subjects.proberRunChecksCommand,
      (msg) => {
        this.prober.runRound().then(
          (summary) => msg.respond(encodeJson(summary)),
          (error: Error) => {
            // Refused under a flood: counted (prober_round_requests_total{outcome="shed"}), not logged.
            if (error instanceof RoundQueueFullError) {
              msg.respond(encodeJson({ error: { code: 'BUSY', message: error.message } }));
              return;
            }
            this.logger.error(`manual round failed: ${error.message}`);
            msg.respond(encodeJson({ error: { code: 'ROUND_FAILED', message: error.message } }));
          },
        );
      },
      // The body is not read; the counter catches whatever the handler might throw.
      { queue: this.subjects.queueGroup('health-prober'), rejections: this.metrics.messagesRejected },
    );
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }
}
