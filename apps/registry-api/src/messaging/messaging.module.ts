import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG, SUBJECTS } from '../registry-api.tokens';

const DUPLICATE_WINDOW_MS = 2 * 60_000;

/** The NATS connection, and the REGISTRY stream created or updated before anything publishes. */
@Global()
@Module({
  providers: [
    {
      provide: SUBJECTS,
      inject: [REGISTRY_API_CONFIG],
      useFactory: (config: RegistryApiConfig) => new SubjectSpace(config.SUBJECT_PREFIX),
    },
    {
      provide: NatsClient,
      inject: [REGISTRY_API_CONFIG, SUBJECTS],
      useFactory: async (config: RegistryApiConfig, subjects: SubjectSpace) => {
        const client = await NatsClient.connect(config.natsConnection('registry-api'));
        await client.ensureStream({
          name: subjects.registryStream,
          subjects: [subjects.registryEventsAll],
          maxAgeMs: config.EVENT_STREAM_MAX_AGE_HOURS * 3_600_000,
          duplicateWindowMs: DUPLICATE_WINDOW_MS,
          replicas: config.eventStreamReplicas,
        });
        return client;
      },
    },
  ],
  exports: [NatsClient, SUBJECTS],
})
export class MessagingModule implements OnApplicationShutdown {
  constructor(@Inject(NatsClient) private readonly nats: NatsClient) {}

  async onApplicationShutdown(): Promise<void> {
    await this.nats.close();
  }
}
