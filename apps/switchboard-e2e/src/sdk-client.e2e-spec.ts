import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { BadRequestError, NoInstanceError, RetriesExhaustedError, StreamCutError, SwitchboardClient, SwitchboardLogger } from '@switchboard/client';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { REGISTRY_TOKEN, registerInstance, RunningApp, startApp, stopApp } from './support/system.util';

const REGISTRY = '/api/v2/services/registry';
const MOCK_MAIN = 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js';
const silent: SwitchboardLogger = { log: () => undefined, warn: () => undefined, error: () => undefined };
const chat = (model: string, text = 'alpha beta gamma', extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: text }], ...extra });

/**
 * The SDK's client side against the real system: registry-api as built, real PostgreSQL and NATS,
 * backends as processes (mock-llm-backend, SIGKILLed) or in-process (to count what they saw).
 */
describe('SDK client (@switchboard/client) against registry-api and real backends', () => {
  let env: TestEnvironment;
  let registry: RunningApp;
  let client: SwitchboardClient;
  const processes: RunningApp[] = [];
  const inProcess: MockBackend[] = [];
  const servers: Server[] = [];

  async function register(serviceId: string, port: number, models: string[], serviceName = 'vllm'): Promise<void> {
    await registerInstance(registry.url, { serviceId, serviceName, port, models });
  }

  async function setStatus(serviceId: string, body: Record<string, string>): Promise<void> {
    const response = await fetch(`${registry.url}${REGISTRY}/${serviceId}/status`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-registry-token': REGISTRY_TOKEN },
      body: JSON.stringify(body),
    });
    if (response.status !== 200) throw new Error(`status of ${serviceId}: ${response.status} ${await response.text()}`);
  }

  async function mockProcess(name: string, models: string[]): Promise<RunningApp> {
    const app = await startApp(MOCK_MAIN, { MOCK_NAME: name, MOCK_MODELS: models.join(','), MOCK_LATENCY_MS: '5', MOCK_COMPLETION_TOKENS: '4' });
    processes.push(app);
    await register(name, Number(new URL(app.url).port), models);
    return app;
  }

  async function mockInProcess(name: string, models: string[]): Promise<MockBackend> {
    const backend = await startMockBackend({ name, models, completionTokens: 4 });
    inProcess.push(backend);
    await register(name, backend.port, models);
    return backend;
  }

  beforeAll(async () => {
    env = await createTestEnvironment('sdkclient');
    registry = await startApp('dist/apps/registry-api/apps/registry-api/src/main.js', {
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
    });
    client = await SwitchboardClient.connect({ natsUrl: env.natsUrl, subjectPrefix: env.subjectPrefix, environment: 'development', logger: silent, startTimeout: 30_000 });
  });

  afterAll(async () => {
    await client?.close();
    await Promise.all(processes.map((p) => stopApp(p, 'SIGKILL')));
    await Promise.all(inProcess.map((b) => b.close()));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await stopApp(registry);
    await env?.dispose();
  });

  it('loses no request when one of three instances is SIGKILLed under load', async () => {
    const model = 'kill-model';
    const backends = await Promise.all(['kill-a', 'kill-b', 'kill-c'].map((name) => mockProcess(name, [model])));
    await waitFor(() => client.instances(model).length === 3, 10_000, 'three instances in the client table');
    const victim = backends[0];

    const total = 300;
    let started = 0;
    let completed = 0;
    const failures: unknown[] = [];
    let servedByVictimBeforeKill = -1;
    const worker = async () => {
      while (started < total) {
        started++;
        try {
          const reply = await client.request<{ choices: { message: { content: string } }[] }>(model, '/v1/chat/completions', chat(model), { timeout: 10_000, maxRetries: 3 });
          if (reply.choices[0].message.content !== 'alpha beta gamma alpha') failures.push(new Error(`unexpected reply ${JSON.stringify(reply)}`));
        } catch (error) {
          failures.push(error);
        }
        completed++;
      }
    };
    const load = Promise.all(Array.from({ length: 12 }, worker));
    await waitFor(() => completed >= 60, 30_000, '60 requests done before the kill');
    servedByVictimBeforeKill = ((await (await fetch(`${victim.url}/_mock/stats`)).json()) as { requests: number }).requests;
    victim.process.kill('SIGKILL');
    const completedAtKill = completed;
    await load;

    expect(servedByVictimBeforeKill).toBeGreaterThan(0);
    expect(victim.process.signalCode ?? victim.process.exitCode).not.toBeNull();
    expect(completedAtKill).toBeLessThan(total);
    expect(completed).toBe(total);
    expect(failures).toEqual([]);
    // The table still lists it (no prober here); the client benched it after its failures.
    expect(client.instances(model).find((i) => i.serviceId === 'kill-a')?.measured.ejected).toBe(true);
  }, 120_000);

  it('parallelRequests keeps at most maxParallel requests in flight at the backend, and returns results in input order', async () => {
    let current = 0;
    let peak = 0;
    let seen = 0;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        current++;
        seen++;
        peak = Math.max(peak, current);
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { i: number; bad?: boolean };
        // Later payloads answer sooner, so completion order differs from input order.
        setTimeout(() => {
          current--;
          res.writeHead(body.bad ? 422 : 200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body.bad ? { error: { message: `payload ${body.i} refused` } } : { echo: body.i }));
        }, 60 - (body.i % 4) * 15);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // A service without models: called by its service name.
    await register('counted-1', (server.address() as AddressInfo).port, [], 'counted-svc');
    await waitFor(() => client.instances('counted-svc').length === 1, 10_000, 'counted-svc in the client table');

    const payloads = Array.from({ length: 40 }, (_, i) => ({ i, bad: i === 7 }));
    const results = await client.parallelRequests<{ echo: number }>('counted-svc', '/work', payloads, { maxParallel: 4 });

    expect(seen).toBe(40);
    expect(peak).toBe(4);
    expect(results).toHaveLength(40);
    expect(results.map((r, i) => (r.ok ? r.value.echo : i))).toEqual(payloads.map((p) => p.i));
    const failed = results[7];
    expect(failed.ok).toBe(false);
    expect(!failed.ok && failed.error).toBeInstanceOf(BadRequestError);
    expect(!failed.ok && (failed.error as BadRequestError).status).toBe(422);
    expect(!failed.ok && failed.error.message).toContain('payload 7 refused');
    expect(results.filter((r) => !r.ok)).toHaveLength(1);
  }, 60_000);

  describe('typed errors', () => {
    const model = 'typed-model';
    let backends: MockBackend[];
    const requestsSeen = () => backends.reduce((sum, b) => sum + b.stats().requests, 0);

    beforeAll(async () => {
      backends = await Promise.all(['typed-a', 'typed-b', 'typed-c'].map((name) => mockInProcess(name, [model])));
      await waitFor(() => client.instances(model).length === 3, 10_000, 'three typed-model instances');
    });
    afterEach(() => backends.forEach((b) => b.clearFaults()));

    it('a 400 is not retried: BadRequestError with the status and the body message, one request at the backends', async () => {
      const before = requestsSeen();
      const error = await client
        .request(model, '/v1/chat/completions', chat(model), { maxRetries: 3, headers: { 'x-mock-fault-status': '400' } })
        .then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).status).toBe(400);
      expect((error as BadRequestError).message).toMatch(/HTTP 400 from typed-[abc]: \S+/);
      expect(requestsSeen() - before).toBe(1);
    });

    it('a 5xx moves the request to another instance: the failing instance never fails the caller, and is benched after 3 in a row', async () => {
      // The instance p2c likes best (lowest measured latency) is the one that fails: it is in most pairings.
      await client.parallelRequests(model, '/v1/chat/completions', Array(12).fill(chat(model)), { maxParallel: 1 });
      const bestId = client.getAll(model, 1)[0].serviceId;
      const faulty = backends.findIndex((b) => b.name === bestId);
      backends[faulty].setFaults({ status: 503 });
      const before = backends.map((b) => b.stats().requests);
      for (let i = 0; i < 30; i++) await client.request(model, '/v1/chat/completions', chat(model), { maxRetries: 2 });
      const after = backends.map((b, i) => b.stats().requests - before[i]);
      const others = after.reduce((sum, n) => sum + n, 0) - after[faulty];
      expect(after[faulty]).toBeGreaterThanOrEqual(1);
      expect(after[faulty]).toBeLessThanOrEqual(3);
      expect(others).toBe(30);
      expect(client.instances(model).find((i) => i.serviceId === bestId)?.measured.ejected).toBe(true);
    });

    it('every instance failing: RetriesExhaustedError lists each attempt, on a different instance each', async () => {
      const error = await client
        .request(model, '/v1/chat/completions', chat(model), { maxRetries: 2, headers: { 'x-mock-fault-status': '502' } })
        .then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(RetriesExhaustedError);
      const attempts = (error as RetriesExhaustedError).attempts;
      expect(attempts.map((a) => `${a.reason} ${a.status} ${a.code}`)).toEqual(Array(3).fill('status 502 HTTP 502'));
      expect(new Set(attempts.map((a) => a.serviceId))).toEqual(new Set(['typed-a', 'typed-b', 'typed-c']));
    });

    it('a 429 with Retry-After on the only instance: the retry waits that long, then succeeds', async () => {
      const only = await mockInProcess('patient-1', ['patient-model']);
      await waitFor(() => client.instances('patient-model').length === 1, 10_000, 'patient-model routable');
      only.setFaults({ status: 429, retryAfter: 1, count: 1 });
      const started = Date.now();
      const reply = await client.request<{ object: string }>('patient-model', '/v1/chat/completions', chat('patient-model'), { maxRetries: 1 });
      expect(reply.object).toBe('chat.completion');
      expect(only.stats().requests).toBe(2);
      // Backoff alone would be ~50 ms: the wait is the backend's second.
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    });

    it('a backend that never answers: the attempt times out (listed as such); the caller signal aborts at once with its reason', async () => {
      const stuck = await mockInProcess('stuck-1', ['stuck-model']);
      await waitFor(() => client.instances('stuck-model').length === 1, 10_000, 'stuck-model routable');
      stuck.setFaults({ hang: true });
      const timedOut = await client.request('stuck-model', '/v1/chat/completions', chat('stuck-model'), { timeout: 300, maxRetries: 1 }).then(() => undefined, (e: unknown) => e);
      expect(timedOut).toBeInstanceOf(RetriesExhaustedError);
      expect((timedOut as RetriesExhaustedError).attempts.map((a) => `${a.serviceId} ${a.reason}`)).toEqual(['stuck-1 timeout', 'stuck-1 timeout']);

      const controller = new AbortController();
      const pending = client.request('stuck-model', '/v1/chat/completions', chat('stuck-model'), { timeout: 60_000, signal: controller.signal });
      await waitFor(() => stuck.stats().inflight >= 1, 5000, 'the request at the backend');
      controller.abort(new Error('caller gave up'));
      await expect(pending).rejects.toThrow('caller gave up');
      // The request at the backend was cut, not left running.
      await waitFor(() => stuck.stats().inflight === 0, 5000, 'the backend request aborted');
      expect(client.instances('stuck-model')[0].measured.outstanding).toBe(0);
    });

    it('nothing routable: NoInstanceError, "not ready" with the statuses for a known model, "unknown" otherwise', async () => {
      await mockInProcess('lonely-1', ['lonely-model']);
      await waitFor(() => client.instances('lonely-model').length === 1, 10_000, 'lonely-model routable');
      await setStatus('lonely-1', { status: 'unhealthy' });
      await waitFor(() => client.instances('lonely-model').length === 0, 10_000, 'lonely-model unroutable in the client');

      const notReady = await client.request('lonely-model', '/v1/chat/completions', chat('lonely-model')).then(() => undefined, (e: unknown) => e);
      expect(notReady).toBeInstanceOf(NoInstanceError);
      expect((notReady as NoInstanceError).message).toBe('not ready: lonely-model (status: unhealthy)');
      expect((notReady as NoInstanceError).known).toBe(true);

      const unknown = await client.request('no-such-model', '/v1/chat/completions', chat('no-such-model')).then(() => undefined, (e: unknown) => e);
      expect(unknown).toBeInstanceOf(NoInstanceError);
      expect((unknown as NoInstanceError).known).toBe(false);
      expect(client.getAll('no-such-model', 3)).toEqual([]);
    });

    it('streams pass the SSE events through, parsed, ending at [DONE]; a 5xx before the first byte still moves on', async () => {
      backends[1].setFaults({ status: 500 });
      const contents: string[] = [];
      for (let round = 0; round < 6; round++) {
        const stream = await client.request<{ choices: { delta: { content?: string } }[] }>(model, '/v1/chat/completions', chat(model, 'one two three', { stream: true }), {
          stream: true,
          maxRetries: 2,
        });
        let text = '';
        let events = 0;
        for await (const event of stream) {
          events++;
          text += event.choices[0]?.delta?.content ?? '';
        }
        expect(events).toBeGreaterThanOrEqual(4);
        contents.push(text);
      }
      expect(contents).toEqual(Array(6).fill('one two three one'));
    });

    it('a stream cut after its first event is not retried: the events so far, then StreamCutError', async () => {
      const cut = await mockInProcess('cut-1', ['cut-model']);
      await waitFor(() => client.instances('cut-model').length === 1, 10_000, 'cut-model routable');
      cut.setFaults({ cutAfterChunks: 2 });
      const stream = await client.request<{ choices: { delta: { content?: string } }[] }>('cut-model', '/v1/chat/completions', chat('cut-model', 'one two three', { stream: true }), {
        stream: true,
        maxRetries: 3,
      });
      const received: unknown[] = [];
      const error = await (async () => {
        for await (const event of stream) received.push(event);
      })().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(StreamCutError);
      expect(received.length).toBeGreaterThanOrEqual(1);
      expect(cut.stats().requests).toBe(1);
    });

    it('getAll ranks measured instances by latency; instances() shows the public view', async () => {
      const ranked = client.getAll(model, 2);
      expect(ranked).toHaveLength(2);
      expect(ranked[0].measured.latencyMs).toEqual(expect.any(Number));
      expect(ranked[0].measured.latencyMs ?? Number.NaN).toBeLessThanOrEqual(ranked[1].measured.latencyMs ?? Number.POSITIVE_INFINITY);
      const all = client.instances(model);
      expect(all.map((i) => i.serviceId).sort()).toEqual(['typed-a', 'typed-b', 'typed-c']);
      expect(all[0]).toMatchObject({ serviceName: 'vllm', environment: 'development', models: [model], status: 'healthy', adminState: 'enabled' });
      expect(all[0].url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    });
  });

  // Last: it stops registry-api for good.
  it('lookups and requests keep working while registry-api is stopped', async () => {
    await mockInProcess('outage-1', ['outage-model']);
    await waitFor(() => client.instances('outage-model').length === 1, 10_000, 'outage-model in the client table');
    await stopApp(registry);
    expect(registry.process.exitCode ?? registry.process.signalCode).not.toBeNull();
    await expect(fetch(`${registry.url}/health`)).rejects.toThrow();

    expect(client.instances('outage-model').map((i) => i.serviceId)).toEqual(['outage-1']);
    const replies = await client.parallelRequests<{ object: string }>('outage-model', '/v1/chat/completions', Array(10).fill(chat('outage-model')), { maxParallel: 3 });
    expect(replies.map((r) => r.ok && r.value.object)).toEqual(Array(10).fill('chat.completion'));
  }, 60_000);
});
