import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@switchboard/config';
import { parseRegistryEvent, ParsedRegistryEvent, SubjectSpace } from '@switchboard/contracts';
import { decodeJson, NatsClient } from '@switchboard/messaging';
import { RegistryRepository } from '@switchboard/persistence';
import { createTestEnvironment, TestEnvironment } from '@switchboard/testing';
import { createRegistryApi } from '../bootstrap';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { productionRules, RegistryApiConfig } from '../config/registry-api.config';

export const REGISTRY_TOKEN = 'dev-registry-token';
export const ADMIN_TOKEN = 'dev-admin-token';
export const BASE = '/api/v2/services/registry';

export interface RunningRegistryApi {
  app: NestFastifyApplication;
  url: string;
  env: TestEnvironment;
  subjects: SubjectSpace;
  /** A separate client, as another app would have. */
  nats: NatsClient;
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  /** Drains the outbox (publish acknowledged), then returns every event on the stream. */
  settledEvents(): ReturnType<RunningRegistryApi['streamEvents']>;
  /** Every event on this suite's REGISTRY stream, in stream order, validated as consumers do. */
  streamEvents(): Promise<(ParsedRegistryEvent & { subject: string; msgId?: string; traceparent?: string })[]>;
  /** What a refused request must leave unchanged: the highest revision, the rows, the outbox (once the relay has drained it, up to 5 s). */
  writeState(): Promise<{ revision: number; rows: number; outbox: number }>;
  close(): Promise<void>;
}

/** registry-api as main.ts builds it, on a free port, with this suite's own database and subject prefix. */
export async function startRegistryApi(label: string, overrides: Record<string, string> = {}, existing?: TestEnvironment): Promise<RunningRegistryApi> {
  const env = existing ?? (await createTestEnvironment(label));
  const config = loadConfig(
    RegistryApiConfig,
    {
      DATABASE_URL: env.databaseUrl,
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      LOG_LEVEL: 'warn',
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
      // Off unless a suite asks: without cache-invalidator running, cached discovery would be stale.
      CACHE_ENABLED: 'false',
      REDIS_URL: env.redisUrl,
      REDIS_KEY_PREFIX: env.redisKeyPrefix,
      ...overrides,
    },
    productionRules,
  );
  const app = await createRegistryApi(config);
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const subjects = new SubjectSpace(env.subjectPrefix);
  const nats = await NatsClient.connect({ servers: overrides['NATS_URL'] ?? env.natsUrl, name: `test-${label}` });

  const streamEvents: RunningRegistryApi['streamEvents'] = async () => {
    const jsm = await nats.jsm();
    const info = await jsm.streams.info(subjects.registryStream);
    const events = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg = await jsm.streams.getMessage(subjects.registryStream, { seq });
      events.push({
        ...parseRegistryEvent(decodeJson(msg.data)),
        subject: msg.subject,
        msgId: msg.header?.get('Nats-Msg-Id'),
        traceparent: msg.header?.get('traceparent'),
      });
    }
    return events;
  };

  return {
    app,
    url,
    env,
    subjects,
    nats,
    async http(method, path, body, headers = {}) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
    },
    async settledEvents() {
      await app.get(OutboxRelayService).flush();
      return streamEvents();
    },
    streamEvents,
    async writeState() {
      const repository = app.get(RegistryRepository);
      // The relay deletes a committed change's outbox row a few ms after the request returned: wait for
      // that, so a state taken just after a write is not compared with one taken after the relay ran.
      const deadline = Date.now() + 5000;
      let outbox = await repository.outboxDepth();
      while (outbox > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        outbox = await repository.outboxDepth();
      }
      const { revision, instances } = await repository.snapshot();
      return { revision, rows: instances.length, outbox };
    },
    async close() {
      await nats.close();
      await app.close();
      if (!existing) await env.dispose();
    },
  };
}

export function registration(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    serviceName: 'mech-llms',
    serviceId: 'mech-llms-prod-1',
    vmIp: '174.138.68.108',
    internalPort: 3008,
    externalDomain: 'llm.mechdna.net',
    version: '1.2.0',
    deploymentId: 'manual-registration',
    environment: 'production',
    region: 'nyc1',
    capabilities: ['llm', 'streaming'],
    healthCheckEndpoint: '/health',
    metadata: { providers: ['openai'] },
    requiredEnvironmentVars: [{ name: 'OPENAI_API_KEY', type: 'secret', required: true }],
    ...overrides,
  };
}

export const writeHeaders = { 'x-registry-token': REGISTRY_TOKEN };
export const adminHeaders = { 'x-admin-token': ADMIN_TOKEN };
