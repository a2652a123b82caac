import { waitFor } from '@switchboard/testing';
import { rawRouterCall, REGISTRY_TOKEN, RunningApp, startApp, stopApp, System } from './support/system.util';

const MOCK_MAIN = 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js';
const MODEL = 'drain-model';

/**
 * Drain through the SDK, end to end: two mock-llm-backend processes register themselves through
 * @switchboard/client (SERVICE_REGISTRY_URL set), the built router spreads steady load over both, and
 * one gets SIGTERM: draining → the router stops sending → its in-flight requests end → deregistered → exit 0.
 */
describe('@switchboard/client drain under load (router, registry-api, NATS, PostgreSQL)', () => {
  let system: System;
  const backends: RunningApp[] = [];

  beforeAll(async () => {
    // One attempt per request: a request the backend drops would fail here, not be retried elsewhere by the router.
    system = await System.start('sdkdrain', { defaults: { maxAttempts: 1 } });
  });

  afterAll(async () => {
    for (const backend of backends) await stopApp(backend);
    await system?.stop();
  });

  async function startBackend(serviceId: string): Promise<RunningApp> {
    const app = await startApp(MOCK_MAIN, {
      SERVICE_REGISTRY_URL: system.registry.url,
      SERVICE_REGISTRY_TOKEN: REGISTRY_TOKEN,
      SERVICE_ENVIRONMENT: 'development',
      NATS_URL: system.env.natsUrl,
      SUBJECT_PREFIX: system.env.subjectPrefix,
      SERVICE_NAME: 'vllm',
      SERVICE_ID: serviceId,
      MOCK_MODELS: MODEL,
      MOCK_NAME: serviceId,
      MOCK_LATENCY_MS: '100',
      HEARTBEAT_INTERVAL_MS: '200',
      DRAIN_DEADLINE_MS: '10000',
    });
    backends.push(app);
    return app;
  }

  async function served(app: RunningApp): Promise<number> {
    return ((await (await fetch(`${app.url}/_mock/stats`)).json()) as any).byPath['/v1/chat/completions'] ?? 0;
  }

  it('a backend draining under steady load loses 0 requests and leaves the registry', async () => {
    const a = await startBackend('sdk-drain-a');
    const b = await startBackend('sdk-drain-b');
    for (const id of ['sdk-drain-a', 'sdk-drain-b']) {
      const registered = await waitFor(() => system.instance(id), 15_000, `${id} registered by the SDK`);
      await system.waitForRevision((registered as any).revision);
    }

    let running = true;
    const outcomes = { ok: 0, failed: [] as string[] };
    const worker = async () => {
      while (running) {
        const res = await rawRouterCall(system, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'drain' }] }).catch((e: Error) => ({ status: 0, body: e.message }));
        if (res.status === 200) outcomes.ok++;
        else outcomes.failed.push(`${res.status} ${JSON.stringify(res.body)}`);
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await waitFor(async () => (await served(a)) >= 5 && (await served(b)) >= 5, 20_000, 'load on both backends');

    const exited = new Promise<number | null>((resolve) => a.process.once('exit', (code) => resolve(code)));
    a.process.kill('SIGTERM');
    // Draining: the registry shows it (briefly), then the instance is gone and the process has exited 0.
    expect(await exited).toBe(0);
    expect(await system.instance('sdk-drain-a')).toBeUndefined();
    expect(a.output.join('')).toContain('drained and deregistered');

    const bBefore = await served(b);
    await waitFor(async () => (await served(b)) >= bBefore + 10, 20_000, 'the load to go on on the other backend');
    running = false;
    await Promise.all(workers);

    expect(outcomes.failed).toEqual([]);
    expect(outcomes.ok).toBeGreaterThan(20);
    expect(await system.instance('sdk-drain-b')).toMatchObject({ adminState: 'enabled' });
  });
});
