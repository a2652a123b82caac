import OpenAI from 'openai';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, PrivateNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { API_KEY, REGISTRY_TOKEN, registerInstance, RunningApp, startApp, startRouter, stopApp } from './support/system.util';

const REGISTRY = '/api/v2/services/registry';
const MODELS = 30;
const ROUNDS = 3;

/**
 * Issue 9 §3 and §5, as an operator saw it: 30 models flip between enabled and disabled through the
 * REST API while NATS is killed (SIGKILL) and restarted twice and the router serves a steady model
 * all along. Afterwards the router must route by the registry (its /v1/models is the registry's set of
 * routable models) within seconds, without a restart; and the steady model must never have failed,
 * since the router routes from its own table while NATS is away. Repeated, since the bug it guards
 * against showed in 3 runs of 8.
 */
describe('NATS killed and restarted under writes and router load (built apps, private NATS)', () => {
  let nats: PrivateNatsServer;
  let env: TestEnvironment;
  let registry: RunningApp;
  let router: RunningApp;
  let backend: MockBackend;

  const registryCall = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${registry.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-registry-token': REGISTRY_TOKEN, 'x-admin-token': 'dev-admin-token' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  const register = (serviceId: string, models: string[], port: number) => registerInstance(registry.url, { serviceId, serviceName: 'flip', port, models });

  /** The registry's routable models in development, from its snapshot. */
  async function registryRoutable(): Promise<string[]> {
    const { body } = await registryCall('GET', `${REGISTRY}/snapshot`);
    const models = new Set<string>();
    for (const instance of body.instances as { environment: string; routable: boolean; models: string[] }[]) {
      if (instance.environment === 'development' && instance.routable) for (const model of instance.models) models.add(model);
    }
    return [...models].sort();
  }

  async function routerModels(): Promise<string[]> {
    const response = await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${API_KEY}` } });
    return ((await response.json()) as { data: { id: string }[] }).data.map((m) => m.id).sort();
  }

  beforeAll(async () => {
    nats = await PrivateNatsServer.start();
    env = await createTestEnvironment('natsoutage');
    const common = { NATS_URL: nats.url, SUBJECT_PREFIX: env.subjectPrefix };
    registry = await startApp('dist/apps/registry-api/apps/registry-api/src/main.js', { ...common, DATABASE_URL: env.databaseUrl, DATABASE_CREATE_IF_MISSING: 'false' });
    // Drift check every 10 minutes only: the stream feed alone must recover (the check would hide a feed that does not).
    router = await startRouter(nats.url, env.subjectPrefix, { DRIFT_CHECK_INTERVAL_MS: '600000' });
    backend = await startMockBackend({ name: 'steady', models: ['steady'] });
    await register('steady-1', ['steady'], backend.port);
    for (let i = 0; i < MODELS; i++) await register(`flip-${i}`, [`flip-${i}`], backend.port);
    await waitFor(async () => (await routerModels()).length === MODELS + 1, 10_000, 'the router to see every model');
  });

  afterAll(async () => {
    await stopApp(router);
    await stopApp(registry);
    await backend?.close();
    await env?.dispose();
    await nats?.dispose();
  });

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: routes by the registry within seconds after the outages, and the steady model never failed`, async () => {
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        // Flip random models as fast as the registry answers (it keeps taking writes while NATS is down: the outbox holds the events).
        while (writing) {
          const i = Math.floor(Math.random() * MODELS);
          const res = await registryCall('PUT', `${REGISTRY}/flip-${i}/status`, { adminState: Math.random() < 0.5 ? 'enabled' : 'disabled' });
          expect(res.status).toBe(200);
          writes++;
        }
      })();
      const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 10_000 });
      const failures: string[] = [];
      let served = 0;
      const load = (async () => {
        while (writing) {
          await client.chat.completions
            .create({ model: 'steady', messages: [{ role: 'user', content: 'hi' }] })
            .then(() => served++)
            .catch((error: Error) => failures.push(error.message));
        }
      })();

      for (let outage = 0; outage < 2; outage++) {
        await waitFor(() => writes > 20 * (outage + 1), 10_000, 'writes before the outage');
        await nats.stop();
        const during = writes;
        const downAt = Date.now();
        // Down for a second at least: long enough for every client to notice and start reconnecting.
        await waitFor(() => writes > during + 20 && Date.now() - downAt > 1000, 10_000, 'writes while NATS is down');
        await nats.start();
      }
      const after = writes;
      await waitFor(() => writes > after + 20, 10_000, 'writes after NATS is back');
      writing = false;
      await Promise.all([writer, load]);

      const quiet = Date.now();
      const expected = await registryRoutable();
      await waitFor(async () => JSON.stringify(await routerModels()) === JSON.stringify(expected), 15_000, 'the router to agree with the registry').catch(() => undefined);
      expect(await routerModels()).toEqual(expected);
      process.stdout.write(`[nats-outage] round ${round}: ${writes} writes, ${served} completions served, agreed ${Date.now() - quiet} ms after the last write\n`);
      expect(failures).toEqual([]);
      expect(served).toBeGreaterThan(0);
    });
  }
});
