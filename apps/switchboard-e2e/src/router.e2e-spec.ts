import OpenAI from 'openai';
import { buildRegistryEvent, SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { startMockBackend } from '@switchboard/mock-llm-backend';
import { waitFor } from '@switchboard/testing';
import { rawRouterCall, System } from './support/system.util';

const MODEL = 'llama-2-7b';
const POLICY = {
  aliases: { 'gpt-4o': MODEL },
  models: { 'rr-model': { strategy: 'round-robin', ejectAfterFailures: 2, ejectBaseMs: 60_000 } },
};

describe('llm-router end to end (registry-api, router, mock backends, openai client)', () => {
  let system: System;
  let openai: OpenAI;

  beforeAll(async () => {
    system = await System.start('router', POLICY);
    await system.addBackend('vllm-a', [MODEL], { completionTokens: 12 });
    await system.addBackend('vllm-b', [MODEL], { completionTokens: 12 });
    openai = system.client();
  });
  afterAll(async () => {
    await system?.stop();
  });
  afterEach(() => {
    for (const backend of system.backends) backend.clearFaults();
  });

  it('answers a chat completion from a backend that serves the model', async () => {
    const completion = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello router' }] });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0].message.content).toBeTruthy();
    expect(completion.usage?.completion_tokens).toBe(12);
  });

  it('streams chunk by chunk through the router', async () => {
    const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream please' }], stream: true });
    const deltas: string[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      deltas.push(chunk.choices[0]?.delta?.content ?? '');
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(deltas.filter(Boolean).length).toBeGreaterThanOrEqual(12);
    expect(finish).toBe('stop');
  });

  it('passes SSE through unbuffered, with the headers that keep proxies from buffering', async () => {
    const res = await fetch(`${system.router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${system.client().apiKey}` },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const text = await res.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('serves completions and embeddings too', async () => {
    const completion = await openai.completions.create({ model: MODEL, prompt: 'once upon a time' });
    expect(completion.choices[0].text).toBeTruthy();
    const embedding = await openai.embeddings.create({ model: MODEL, input: ['a', 'b'] });
    expect(embedding.data).toHaveLength(2);
  });

  it('lists routable models and aliases in OpenAI shape', async () => {
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['gpt-4o', MODEL]);
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'switchboard' });
  });

  it('routes an alias to the model it names', async () => {
    const completion = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'alias' }] });
    expect(completion.model).toBe(MODEL);
  });

  it('answers 404 model not found for an unknown model', async () => {
    const error = await openai.chat.completions.create({ model: 'llama-3-405b', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.status).toBe(404);
    expect(error.error).toMatchObject({ message: 'model not found in registry: llama-3-405b', code: 'model_not_found' });
  });

  it('answers 401 in OpenAI shape for a missing or wrong key', async () => {
    const error = await system.client({ apiKey: 'sk-wrong-key-000000' }).models.list().catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
    const raw = await fetch(`${system.router.url}/v1/models`);
    expect(raw.status).toBe(401);
    expect(((await raw.json()) as any).error.code).toBe('missing_api_key');
  });

  it('answers 400 in OpenAI shape for malformed JSON or missing fields', async () => {
    const malformed = await rawRouterCall(system, '/v1/chat/completions', '{"model":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.type).toBe('invalid_request_error');
    const missing = await rawRouterCall(system, '/v1/chat/completions', { model: MODEL });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ param: 'messages', type: 'invalid_request_error' });
  });

  it('answers 503 model not ready for a disabled model, and routes again once enabled', async () => {
    const disabled = await system.registryCall('POST', '/api/v2/services/registry/models/disable', { modelName: MODEL, environment: 'development' });
    await system.waitForRevision(Math.max(...disabled.body.models.map((m: { revision: number }) => m.revision)));
    const error = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
    expect(error.status).toBe(503);
    expect(error.error.message).toBe(`model not ready: ${MODEL} (status: disabled)`);

    const enabled = await system.registryCall('POST', '/api/v2/services/registry/models/enable', { modelName: MODEL, environment: 'development' });
    await system.waitForRevision(Math.max(...enabled.body.models.map((m: { revision: number }) => m.revision)));
    await expect(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).resolves.toBeTruthy();
  });

  // How fast the change arrives is measured by the benchmarks; here: once it has, the instance is never chosen.
  it('stops choosing an instance as soon as its status change made through registry-api reaches the router', async () => {
    const changed = await system.registryCall('PUT', '/api/v2/services/registry/vllm-a/status', { status: 'unhealthy', reason: 'e2e' });
    expect(changed.status).toBe(200);
    await system.waitForRevision(changed.body.service.revision);
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await rawRouterCall(system, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }] });
      served.add(res.headers.get('x-switchboard-instance') as string);
    }
    expect([...served]).toEqual(['vllm-b']);
    const back = await system.registryCall('PUT', '/api/v2/services/registry/vllm-a/status', { status: 'healthy' });
    await system.waitForRevision(back.body.service.revision);
  });

  it('fails over to another instance on 5xx before the first byte, and ejects the failing one', async () => {
    const failing = await system.addBackend('rr-a', ['rr-model']);
    const healthy = await system.addBackend('rr-b', ['rr-model']);
    failing.setFaults({ status: 500 });
    for (let i = 0; i < 10; i++) {
      await expect(openai.chat.completions.create({ model: 'rr-model', messages: [{ role: 'user', content: 'x' }] })).resolves.toBeTruthy();
    }
    expect(healthy.stats().requests).toBe(10);
    // Round-robin sends it every other request until two failures in a row eject it.
    expect(failing.stats().requests).toBe(2);
    const metrics = await (await fetch(`${system.router.url}/metrics`)).text();
    expect(metrics).toMatch(/router_retries_total\{model="rr-model",reason="status",app="llm-router"\} 2/);
    expect(metrics).toMatch(/router_ejections_total\{model="rr-model",instance="rr-a",app="llm-router"\} 1/);
  });

  it('drops the metric series of a deregistered instance, so the instance label stays bounded by the registry', async () => {
    await system.addBackend('gone-a', ['gone-model']);
    const metrics = async () => (await fetch(`${system.router.url}/metrics`)).text();
    expect((await rawRouterCall(system, '/v1/chat/completions', { model: 'gone-model', messages: [{ role: 'user', content: 'x' }] })).status).toBe(200);
    expect(await metrics()).toMatch(/router_requests_total\{model="gone-model",instance="gone-a",code="200"/);
    const removed = await system.registryCall('DELETE', '/api/v2/services/registry/services/gone-a');
    expect(removed.status).toBe(200);
    await system.waitForRevision(removed.body.revision);
    await waitFor(async () => !(await metrics()).includes('instance="gone-a"'), 10_000, 'the series of gone-a to be dropped');
    expect(await metrics()).toMatch(/router_instance_series_dropped_total\{[^}]*\} [1-9]/);
  });

  it('loses no request when a backend dies under load while another serves the model', async () => {
    const doomed = await system.addBackend('kill-a', ['kill-model'], { latencyMs: 5 });
    const survivor = await system.addBackend('kill-b', ['kill-model'], { latencyMs: 5 });
    let sent = 0;
    const failures: unknown[] = [];
    const worker = async () => {
      while (sent < 300) {
        sent++;
        await openai.chat.completions.create({ model: 'kill-model', messages: [{ role: 'user', content: 'load' }] }).catch((e) => failures.push(e));
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await waitFor(() => doomed.stats().requests >= 30, 10_000, 'load on both backends');
    await doomed.kill();
    await load;
    expect(failures).toEqual([]);
    expect(survivor.stats().requests).toBeGreaterThan(100);
  });

  it('reloads aliases and fallbacks from the policy file without a restart', async () => {
    await system.addBackend('vllm-spare', ['spare-model']);
    const disabled = await system.addBackend('vllm-primary', ['primary-model']);
    const off = await system.registryCall('PUT', '/api/v2/services/registry/vllm-primary/status', { adminState: 'disabled' });
    await system.waitForRevision(off.body.service.revision);
    await system.writePolicy({ ...POLICY, aliases: { ...POLICY.aliases, smart: 'primary-model' }, fallbacks: { 'primary-model': ['spare-model'] } });

    const res = await rawRouterCall(system, '/v1/chat/completions', { model: 'smart', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-switchboard-instance')).toBe('vllm-spare');
    expect(disabled.stats().requests).toBe(0);

    // A broken file is refused and the last good policy stays: wait for the router to say it refused this file.
    const live = (await system.routerHealth()).policy;
    const logged = system.router.output.join('').length;
    await system.writePolicy({ aliases: { smart: 42 } }, true);
    await waitFor(() => /routing policy .* invalid, keeping the previous one: aliases\.smart/.test(system.router.output.join('').slice(logged)), 5000, 'the router to refuse the broken policy');
    expect((await system.routerHealth()).policy).toEqual(live);
    expect((await rawRouterCall(system, '/v1/chat/completions', { model: 'smart', messages: [{ role: 'user', content: 'x' }] })).status).toBe(200);
    await system.writePolicy(POLICY);
  });

  it('aborts the upstream request when the client disconnects mid-stream', async () => {
    const slow = await system.addBackend('vllm-slow', ['slow-model'], { tokensPerSecond: 20, completionTokens: 200 });
    const controller = new AbortController();
    const stream = await openai.chat.completions.create({ model: 'slow-model', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: controller.signal });
    let chunks = 0;
    // The client's own abort ends the iteration quietly (openai's stream returns on it); any other
    // error, from the router or the backend, throws here and fails the test.
    for await (const _ of stream) {
      if (++chunks === 3) controller.abort();
    }
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(chunks).toBeLessThan(50);
    await waitFor(() => slow.stats().aborted === 1, 5000, 'the backend to see its request aborted');
  });

  it('maps upstream failures honestly when every instance fails, never a 200 with an error body', async () => {
    const broken = await system.addBackend('vllm-broken', ['broken-model']);
    broken.setFaults({ status: 500 });
    const failed = await rawRouterCall(system, '/v1/chat/completions', { model: 'broken-model', messages: [{ role: 'user', content: 'x' }] });
    expect(failed.status).toBe(502);
    expect(failed.body.error).toMatchObject({ type: 'server_error', code: 'upstream_error' });

    broken.setFaults({ status: 429, retryAfter: 7 });
    const limited = await rawRouterCall(system, '/v1/chat/completions', { model: 'broken-model', messages: [{ role: 'user', content: 'x' }] });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');

    broken.setFaults({ hang: true });
    await system.writePolicy({ ...POLICY, models: { ...POLICY.models, 'broken-model': { timeouts: { firstTokenMs: 300 }, maxAttempts: 1 } } });
    // The 429's Retry-After ejected the only instance for 7 s: panic mode still tries it.
    const timedOut = await rawRouterCall(system, '/v1/chat/completions', { model: 'broken-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    expect(timedOut.status).toBe(504);
    expect(timedOut.body.error.code).toBe('upstream_timeout');
    const metrics = await (await fetch(`${system.router.url}/metrics`)).text();
    expect(metrics).toMatch(/router_panic_total\{model="broken-model",app="llm-router"\} [1-9]/);
  });

  it('ignores a forged event with a huge revision from anyone on the bus: traffic stays on the real instance, real changes still apply, /metrics counts it', async () => {
    const real = await system.addBackend('forge-real', ['forge-model']);
    const attackerBackend = await startMockBackend({ name: 'attacker', models: ['forge-model'] });
    const attacker = await NatsClient.connect({ servers: system.env.natsUrl, name: 'e2e-attacker' });
    try {
      const service = (await system.registryCall('GET', '/api/v2/services/registry/services/forge-real')).body.service;
      const revision = 1_000_000_000;
      const subjects = new SubjectSpace(system.env.subjectPrefix);
      attacker.publish(
        subjects.registryEvent('registered', 'development', 'vllm'),
        buildRegistryEvent('registered', 'forge-real', { revision, instance: { ...service, internalUrl: attackerBackend.url, revision } }, new Date()),
      );
      await waitFor(
        async () => /routing_table_events_rejected_total\{reason="ahead_of_registry"[^}]*\} 1\b/.test(await (await fetch(`${system.router.url}/metrics`)).text()),
        10_000,
        'the router to count the forged event',
      );
      for (let i = 0; i < 5; i++) {
        const res = await rawRouterCall(system, '/v1/chat/completions', { model: 'forge-model', messages: [{ role: 'user', content: 'x' }] });
        expect(res.status).toBe(200);
      }
      expect(real.stats().requests).toBe(5);
      expect(attackerBackend.stats().requests).toBe(0);

      const off = await system.registryCall('PUT', '/api/v2/services/registry/forge-real/status', { adminState: 'disabled' });
      await system.waitForRevision(off.body.service.revision);
      const refused = await rawRouterCall(system, '/v1/chat/completions', { model: 'forge-model', messages: [{ role: 'user', content: 'x' }] });
      expect(refused.status).toBe(503);
      expect(refused.body.error.message).toBe('model not ready: forge-model (status: disabled)');
    } finally {
      await attacker.close();
      await attackerBackend.close();
    }
  });
});
