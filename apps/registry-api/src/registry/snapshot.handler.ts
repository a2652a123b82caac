import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { encodeJson, NatsClient, Subscription } from '@switchboard/messaging';
import { SUBJECTS } from '../registry-api.tokens';
import { RegistryService } from './registry.service';

/** `registry.cmd.snapshot`: every instance plus the highest revision, for list-then-watch consumers. */
@Injectable()
export class SnapshotHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SnapshotHandler.name);
  private subscription?: Subscription;

  constructor(
    private readonly nats: NatsClient,
    private readonly registry: RegistryService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  onApplicationBootstrap(): void {
    this.subscription = this.nats.subscribe(
      this.subjects.snapshotCommand,
      (msg) => {
        this.registry.snapshot().then(
          (snapshot) => msg.respond(encodeJson(snapshot)),
          (error: Error) => {
            this.logger.error(`snapshot failed: ${error.message}`);
            msg.respond(encodeJson({ error: { code: 'SNAPSHOT_FAILED', message: error.message } }));
          },
        );
      },
      { queue: this.subjects.queueGroup('registry-api') },
    );
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }
}
