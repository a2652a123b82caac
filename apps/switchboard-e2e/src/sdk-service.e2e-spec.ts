import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register, RegisterOptions, RegistrationError, ServiceRegistration } from '@switchboard/client';
import { createTestEnvironment, freePort, PrivateNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { REGISTRY_TOKEN, RunningApp, startApp, stopApp } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const REGISTRY = '/api/v2/services/registry';

/**
 * The service side of @switchboard/client against the built registry-api, real PostgreSQL and NATS:
 * registration with retries, heartbeats carrying the load its middleware measured, and registering
 * again by itself when the registry lost the instance.
 */
describe('@switchboard/client service side (registry-api, NATS, PostgreSQL)', () => {
  const envs: TestEnvironment[] = [];
  const registries: RunningApp[] = [];
  const services: ServiceRegistration[] = [];
  const servers: Server[] = [];

  async function startRegistry(env: TestEnvironment, port?: number): Promise<RunningApp> {
    const app = await startApp(REGISTRY_MAIN, {
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
      ...(port ? { PORT: String(port) } : {}),
    });
    registries.push(app);
    return app;
  }

  async function newEnv(label: string): Promise<TestEnvironment> {
    const env = await createTestEnvironment(label);
    envs.push(env);
    return env;
  }

  /** A plain node:http service: `/ok` answers 200 after 20 ms, `/fail` 503, `/health` 200. Counted by the SDK's node middleware once registered. */
  async function startService(): Promise<{ port: number; wrap(service: ServiceRegistration): void }> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/fail') {
        res.statusCode = 503;
        res.end('busy');
      } else if (req.url === '/ok') setTimeout(() => res.end('ok'), 20);
      else res.end('{"status":"ok"}');
    };
    let current: (req: IncomingMessage, res: ServerResponse) => unknown = handler;
    const server = createServer((req, res) => current(req, res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, wrap: (service) => (current = service.middleware.node(handler)) };
  }

  function options(env: TestEnvironment, registryUrl: string, port: number, extra: Partial<RegisterOptions> = {}): RegisterOptions {
    return {
      serviceName: 'sdk-svc',
      internalPort: port,
      models: ['sdk-model'],
      registryUrl,
      registryToken: REGISTRY_TOKEN,
      natsUrl: env.natsUrl,
      subjectPrefix: env.subjectPrefix,
      environment: 'development',
      heartbeatIntervalMs: 200,
      retry: { initialDelayMs: 50, maxDelayMs: 500 },
      env: {},
      ...extra,
    };
  }

  async function track(promise: Promise<ServiceRegistration>): Promise<ServiceRegistration> {
    const service = await promise;
    services.push(service);
    return service;
  }

  async function instance(registryUrl: string, serviceId: string): Promise<any> {
    const res = await fetch(`${registryUrl}${REGISTRY}/services/${serviceId}`);
    return res.status === 200 ? ((await res.json()) as any).service : undefined;
  }

  afterEach(async () => {
    for (const service of services.splice(0)) await service.close({ deregister: false });
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      server.close();
    }
    for (const app of registries.splice(0)) await stopApp(app);
    for (const env of envs.splice(0)) await env.dispose();
  });

  it('registers and heartbeats over NATS, the load measured by the middleware visible in the registry', async () => {
    const env = await newEnv('sdksvc');
    const registry = await startRegistry(env);
    const app = await startService();
    // No REST check during the test: whatever load the registry shows came over NATS.
    const service = await track(register(options(env, registry.url, app.port, { verifyIntervalMs: 600_000 })));
    app.wrap(service);

    const registered = await instance(registry.url, service.serviceId);
    expect(registered).toMatchObject({ serviceName: 'sdk-svc', environment: 'development', internalPort: app.port, vmIp: '127.0.0.1', models: ['sdk-model'], healthCheckEndpoint: '/health' });
    expect(service.serviceId).toMatch(new RegExp(`^sdk-svc-.+-${app.port}$`));
    // Registering the same instance again (a restart) changes nothing in the registry.
    const again = await register(options(env, registry.url, app.port, { heartbeatTransport: 'rest', verifyIntervalMs: 600_000 }));
    await again.close({ deregister: false });
    expect(again.serviceId).toBe(service.serviceId);
    expect((await instance(registry.url, service.serviceId)).revision).toBe(registered.revision);

    const base = `http://127.0.0.1:${app.port}`;
    await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/ok`).then((r) => r.text())));
    await Promise.all(Array.from({ length: 2 }, () => fetch(`${base}/fail`).then((r) => r.text())));
    for (let i = 0; i < 3; i++) await (await fetch(`${base}/health`)).text(); // the prober's path: not load

    const load = await waitFor(async () => {
      const now = (await instance(registry.url, service.serviceId))?.load;
      return now?.requestsPerMinute === 12 ? now : undefined;
    }, 15_000, 'the 12 requests in the registry');
    expect(load.errorRate).toBeCloseTo(2 / 12, 5);
    expect(load.averageLatency).toBeGreaterThan(10); // ten of the twelve took 20 ms
    expect(load.inflight).toBe(0);
    expect(service.heartbeatTransport).toBe('nats');
  });

  it('heartbeats over REST while its NATS is down, so the instance and its load stay current', async () => {
    const env = await newEnv('sdkrest');
    const registry = await startRegistry(env);
    const app = await startService();
    // The service's own NATS (registry-api does not listen there): only the REST fallback can carry its load.
    const nats = await PrivateNatsServer.start();
    try {
      const service = await track(register(options(env, registry.url, app.port, { natsUrl: nats.url, verifyIntervalMs: 600_000 })));
      app.wrap(service);
      await waitFor(() => service.heartbeatTransport === 'nats', 10_000, 'a first heartbeat over NATS');
      await nats.stop();
      await Promise.all(Array.from({ length: 5 }, () => fetch(`http://127.0.0.1:${app.port}/ok`).then((r) => r.text())));
      await waitFor(async () => (await instance(registry.url, service.serviceId))?.load?.requestsPerMinute === 5, 15_000, 'the load over REST');
      expect(service.heartbeatTransport).toBe('rest');
    } finally {
      await nats.dispose();
    }
  });

  it('retries while registry-api is unreachable and resolves once it answers', async () => {
    const env = await newEnv('sdkretry');
    const port = await freePort();
    const app = await startService();
    const warnings: string[] = [];
    const logger = { log: () => undefined, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
    const pending = track(register(options(env, `http://127.0.0.1:${port}`, app.port, { logger })));
    // At least one attempt failed (nothing listens yet); registry-api comes up only then.
    await waitFor(() => warnings.some((w) => w.includes('not reachable to register')), 10_000, 'a failed attempt');
    const registry = await startRegistry(env, port);
    const service = await pending;
    expect(service.registered).toBe(true);
    expect(await instance(registry.url, service.serviceId)).toMatchObject({ serviceName: 'sdk-svc' });
  });

  it('throws a configuration error at once on a 4xx, with the API message', async () => {
    const env = await newEnv('sdk4xx');
    const registry = await startRegistry(env);
    const app = await startService();
    const error = await register(options(env, registry.url, app.port, { registryToken: 'not-the-token' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistrationError);
    expect((error as RegistrationError).status).toBe(403);
    expect((error as RegistrationError).message).toMatch(/HTTP 403/);
  });

  it('re-registers after registry-api restarts with an empty table', async () => {
    const env = await newEnv('sdkrereg');
    const registry = await startRegistry(env);
    const port = Number(new URL(registry.url).port);
    const app = await startService();
    const service = await track(register(options(env, registry.url, app.port, { verifyIntervalMs: 300 })));
    expect(await instance(registry.url, service.serviceId)).toBeDefined();

    // The registry restored from an empty backup: same URL, a fresh database.
    await stopApp(registry);
    const fresh = await newEnv('sdkrereg2');
    const restarted = await startRegistry({ ...fresh, natsUrl: env.natsUrl, subjectPrefix: env.subjectPrefix }, port);
    expect(restarted.url).toBe(registry.url);

    const back = await waitFor(() => instance(restarted.url, service.serviceId), 20_000, 'the instance back in the registry');
    expect(back).toMatchObject({ serviceName: 'sdk-svc', models: ['sdk-model'], internalPort: app.port });
    expect(service.reRegistrations).toBe(1);
    expect(service.registered).toBe(true);
  });
});
