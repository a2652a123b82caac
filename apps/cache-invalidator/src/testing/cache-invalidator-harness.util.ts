import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@switchboard/config';
import { buildRegistryEvent, RegistryEventDataByKind, RegistryEventKind, SubjectSpace } from '@switchboard/contracts';
import { CacheInvalidationHandler } from '@switchboard/discovery-cache';
import { NatsClient } from '@switchboard/messaging';
import type { TestEnvironment } from '@switchboard/testing';
import { createCacheInvalidator } from '../bootstrap';
import { CacheInvalidatorConfig } from '../config/cache-invalidator.config';

export interface RunningInvalidator {
  app: NestFastifyApplication;
  url: string;
  handler: CacheInvalidationHandler;
  http(path: string): Promise<{ status: number; body: any }>;
  /** As if the process died: its NATS connection goes without acknowledging what it holds. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

/** cache-invalidator as main.ts builds it, on a free port, for this suite's subject and key prefix. */
export async function startCacheInvalidator(env: TestEnvironment, overrides: Record<string, string> = {}): Promise<RunningInvalidator> {
  const config = loadConfig(CacheInvalidatorConfig, {
    NATS_URL: env.natsUrl,
    SUBJECT_PREFIX: env.subjectPrefix,
    REDIS_URL: env.redisUrl,
    REDIS_KEY_PREFIX: env.redisKeyPrefix,
    LOG_LEVEL: 'warn',
    ...overrides,
  });
  const app = await createCacheInvalidator(config);
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  let closed = false;
  return {
    app,
    url,
    handler: app.get(CacheInvalidationHandler),
    async http(path) {
      const response = await fetch(`${url}${path}`);
      const text = await response.text();
      return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text };
    },
    async crash() {
      app.get(NatsClient).connection.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

/** Publishes registry events as registry-api's outbox relay does (same stream, subjects, msg id). */
export class EventPublisher {
  private constructor(
    readonly nats: NatsClient,
    readonly subjects: SubjectSpace,
  ) {}

  static async connect(env: TestEnvironment): Promise<EventPublisher> {
    const subjects = new SubjectSpace(env.subjectPrefix);
    const nats = await NatsClient.connect({ servers: env.natsUrl, name: 'test-event-publisher' });
    await nats.ensureStream({ name: subjects.registryStream, subjects: [subjects.registryEventsAll], maxAgeMs: 3_600_000, duplicateWindowMs: 120_000 });
    return new EventPublisher(nats, subjects);
  }

  async publish<K extends RegistryEventKind>(kind: K, data: RegistryEventDataByKind[K] & { revision: number }, place: { environment: string; serviceName: string; serviceId: string }): Promise<void> {
    const event = buildRegistryEvent(kind, place.serviceId, data, new Date());
    await this.nats.publishToStream(this.subjects.registryEvent(kind, place.environment, place.serviceName), event, { msgID: String(data.revision) });
  }

  /** Something on the stream that is not a registry event. */
  async publishGarbage(revision: number): Promise<void> {
    await this.nats.publishToStream(this.subjects.registryEvent('registered', 'production', 'junk'), { hello: 'world' }, { msgID: `junk-${revision}` });
  }

  close(): Promise<void> {
    return this.nats.close();
  }
}
