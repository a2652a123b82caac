import OpenAI from 'openai';
import { buildRegistryEvent } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, NatsRole, SecuredNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { API_KEY, PROBER_MAIN, REGISTRY_TOKEN, registerInstance, RunningApp, startApp, stopApp } from './support/system.util';

const REGISTRY = '/api/v2/services/registry';
const MODEL = 'secured-model';
const BACKEND_ID = 'secured-a';
const TENANT = { environment: 'development', serviceName: 'tenant', serviceId: 'tenant-1' };

/**
 * The system on the shipped deploy/nats/nats-server.conf: registry-api, llm-router, health-prober
 * and cache-invalidator as built processes, each with its own nkey identity (NATS_NKEY_SEED_FILE),
 * on production subjects (no SUBJECT_PREFIX: the server is this suite's alone). A registered
 * service holds a service identity, as it would to heartbeat over NATS.
 */
describe('the system on a NATS server secured by deploy/nats (one identity per app)', () => {
  let nats: SecuredNatsServer;
  let env: TestEnvironment;
  const apps: RunningApp[] = [];
  let registry: RunningApp;
  let router: RunningApp;
  let invalidator: RunningApp;
  let backend: MockBackend;
  let openai: OpenAI;

  function natsEnv(role: NatsRole): Record<string, string> {
    return { NATS_URL: nats.url, SUBJECT_PREFIX: '', NATS_NKEY_SEED_FILE: nats.roleSeedFile(role), REDIS_URL: env.redisUrl, REDIS_KEY_PREFIX: env.redisKeyPrefix };
  }

  async function start(main: string, environment: Record<string, string>): Promise<RunningApp> {
    const app = await startApp(main, environment);
    apps.push(app);
    return app;
  }

  async function registryCall(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${registry.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-registry-token': REGISTRY_TOKEN, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  async function register(serviceId: string, serviceName: string, port: number, models: string[]): Promise<number> {
    return registerInstance(registry.url, { serviceId, serviceName, port, models });
  }


  async function routerRevision(): Promise<number> {
    return ((await (await fetch(`${router.url}/health`)).json()) as { table: { revision: number } }).table.revision;
  }

  async function waitForRouterRevision(revision: number): Promise<void> {
    await waitFor(async () => (await routerRevision()) >= revision, 10_000, `router table at revision ${revision}`);
  }

  async function chat(): Promise<{ status: number; body: any }> {
    const response = await fetch(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    });
    return { status: response.status, body: await response.json() };
  }

  beforeAll(async () => {
    nats = await SecuredNatsServer.start({ services: [`${TENANT.environment}/${TENANT.serviceName}/${TENANT.serviceId}`] });
    env = await createTestEnvironment('securednats');
    registry = await start('dist/apps/registry-api/apps/registry-api/src/main.js', {
      ...natsEnv('registry-api'),
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
      HEALTH_CHECK_MIN_INTERVAL_MS: '100',
    });
    router = await start('dist/apps/llm-router/apps/llm-router/src/main.js', {
      ...natsEnv('llm-router'),
      ROUTER_ENVIRONMENT: 'development',
      ROUTER_API_KEYS: API_KEY,
      DRIFT_CHECK_INTERVAL_MS: '1000',
    });
    invalidator = await start('dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js', natsEnv('cache-invalidator'));
    await start(PROBER_MAIN, {
      ...natsEnv('health-prober'),
      REGISTRY_URL: registry.url,
      PROBER_ENVIRONMENT: 'development',
      CHECK_INTERVAL_MS: '200',
      CHECK_TIMEOUT_MS: '200',
      PROBE_MIN_INTERVAL_MS: '100',
      UNHEALTHY_THRESHOLD: '2',
      HEALTHY_THRESHOLD: '2',
      MEMBER_HEARTBEAT_INTERVAL_MS: '200',
    });
    backend = await startMockBackend({ name: BACKEND_ID, models: [MODEL] });
    openai = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
  });

  afterAll(async () => {
    await backend?.close();
    for (const app of apps.reverse()) await stopApp(app);
    await env?.dispose();
    await nats?.dispose();
  });

  it('routes a model registered over REST to its backend, the stream, the prober and the invalidator all working', async () => {
    await waitForRouterRevision(await register(BACKEND_ID, 'vllm', backend.port, [MODEL]));
    const completion = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'through secured NATS' }] });
    expect(completion.choices[0].message.content).toBeTruthy();
    expect(backend.stats().byPath['/v1/chat/completions']).toBe(1);

    // cache-invalidator consumed the event through its durable consumer; the prober checks the backend.
    await waitFor(async () => ((await (await fetch(`${invalidator.url}/health`)).json()) as any).info?.consumer?.handled >= 1, 10_000, 'the invalidator to handle the event');
    await waitFor(() => (backend.stats().byPath['/health'] ?? 0) >= 1, 10_000, 'a health check');
    // registry-api asks the prober for a round (prober.cmd.runChecks), the prober answers.
    const round = await registryCall('POST', `${REGISTRY}/health-checks`, undefined, { 'x-admin-token': 'dev-admin-token' });
    expect(round).toMatchObject({ status: 200, body: { success: true } });
  });

  it('carries a status change found by the prober through registry-api to the router', async () => {
    backend.setFaults({ health: 'unhealthy' });
    await waitFor(async () => (await chat()).status === 503, 10_000, 'the router to stop routing to the unhealthy backend');
    expect((await chat()).body.error.message).toBe(`model not ready: ${MODEL} (status: unhealthy)`);
    backend.clearFaults();
    await waitFor(async () => (await chat()).status === 200, 10_000, 'the router to route to the recovered backend');
  });

  it("takes a service's own heartbeat over NATS, and never routes by the events it forges", async () => {
    const service = await NatsClient.connect({ servers: nats.url, name: TENANT.serviceId, auth: { kind: 'nkeySeed', seed: SecuredNatsServer.seed(nats.serviceSeedFile(TENANT.environment, TENANT.serviceName, TENANT.serviceId)) } });
    const refused: string[] = [];
    void (async () => {
      for await (const status of service.connection.status()) if (status.permissionContext) refused.push(status.permissionContext.subject);
    })();
    const attacker = await startMockBackend({ name: 'attacker', models: [MODEL] });
    try {
      const tenantRevision = await register(TENANT.serviceId, TENANT.serviceName, 9, []);
      service.publish(`registry.heartbeat.${TENANT.environment}.${TENANT.serviceName}.${TENANT.serviceId}`, { metadata: { inflight: 3, requestsPerMinute: 42 } });
      await waitFor(async () => (await registryCall('GET', `${REGISTRY}/services/${TENANT.serviceId}`)).body.service?.load?.inflight === 3, 10_000, 'the heartbeat to reach registry-api');

      // The forged events name the real backend's instance with the attacker's address: one with a
      // revision the registry has reached (plausible, so only the server's permissions stop it) and
      // one with a huge revision (which would make every real update look older).
      const real = (await registryCall('GET', `${REGISTRY}/services/${BACKEND_ID}`)).body.service;
      expect(real.revision).toBeLessThan(tenantRevision);
      const subject = 'registry.events.registered.development.vllm';
      for (const revision of [tenantRevision, 1_000_000_000]) {
        service.publish(subject, buildRegistryEvent('registered', BACKEND_ID, { revision, instance: { ...real, internalUrl: attacker.url, revision } }, new Date()));
      }
      await service.connection.flush();
      await waitFor(() => refused.filter((s) => s === subject).length === 2, 10_000, 'the server to refuse both forged events');

      // Sentinel: a real change after the forgeries reaches the router; whatever they did, they did before it.
      const change = await registryCall('PUT', `${REGISTRY}/${TENANT.serviceId}/status`, { status: 'degraded' });
      expect(change.status).toBe(200);
      await waitForRouterRevision(change.body.service.revision);
      const served = backend.stats().byPath['/v1/chat/completions'] ?? 0;
      for (let i = 0; i < 5; i++) expect((await chat()).status).toBe(200);
      expect(backend.stats().byPath['/v1/chat/completions']).toBe(served + 5);
      expect(attacker.stats().requests).toBe(0);
    } finally {
      await service.close();
      await attacker.close();
    }
  });
});
