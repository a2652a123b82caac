import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { encodeJson, NatsClient, Subscription } from '@switchboard/messaging';
import { SUBJECTS } from '../registry-api.tokens';
import { RegistryService } from './registry.service';

/**
 * `registry.cmd.snapshot`: every instance plus the highest revision, for list-then-watch consumers;
 * `registry.cmd.revision`: just the highest revision, for their periodic drift check.
 */
@Injectable()
export class SnapshotHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SnapshotHandler.name);
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly nats: NatsClient,
    private readonly registry: RegistryService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  onApplicationBootstrap(): void {
    this.answer(this.subjects.snapshotCommand, () => this.registry.snapshot());
    this.answer(this.subjects.revisionCommand, async () => ({ revision: await this.registry.highestRevision() }));
  }

  onApplicationShutdown(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  private answer(subject: string, work: () => Promise<unknown>): void {
    const subscription = this.nats.subscribe(
      subject,
      (msg) => {
        work().then(
          (reply) => msg.respond(encodeJson(reply)),
          (error: Error) => {
            this.logger.error(`${subject} failed: ${error.message}`);
            msg.respond(encodeJson({ error: { code: 'COMMAND_FAILED', message: error.message } }));
          },
        );
      },
      { queue: this.subjects.queueGroup('registry-api') },
    );
    this.subscriptions.push(subscription);
  }
}
