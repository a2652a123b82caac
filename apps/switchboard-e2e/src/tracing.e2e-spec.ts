import { randomBytes } from 'node:crypto';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { OtlpReceiver, ReceivedSpan, SPAN_KIND } from './support/otlp-receiver.util';
import { API_KEY, REGISTRY_TOKEN, registerInstance, RunningApp, startApp, startRouter, stopApp } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';
const MODEL = 'trace-model';

/** A traceparent whose trace id the test knows, as an instrumented client would send it. */
function clientTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

function chat(router: RunningApp, traceparent: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, traceparent },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
}

const find = (spans: ReceivedSpan[], service: string, match: (s: ReceivedSpan) => boolean) => spans.find((s) => s.service === service && match(s));

/**
 * OpenTelemetry across processes: registry-api, cache-invalidator and llm-router as built, exporting
 * OTLP/JSON to a receiver in this test, with the W3C context carried over HTTP and in NATS headers.
 */
describe('tracing (built apps exporting to an OTLP receiver)', () => {
  let env: TestEnvironment;
  let receiver: OtlpReceiver;
  let registry: RunningApp;
  let invalidator: RunningApp;
  let router: RunningApp;
  let backend: MockBackend;
  const backendTraceparents: string[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment('tracing');
    receiver = await OtlpReceiver.start();
    const common = { NATS_URL: env.natsUrl, SUBJECT_PREFIX: env.subjectPrefix };
    registry = await startApp(REGISTRY_MAIN, { ...common, ...receiver.env(), DATABASE_URL: env.databaseUrl, DATABASE_CREATE_IF_MISSING: 'false', REDIS_URL: env.redisUrl });
    invalidator = await startApp(INVALIDATOR_MAIN, { ...common, ...receiver.env(), REDIS_URL: env.redisUrl, REDIS_KEY_PREFIX: env.redisKeyPrefix });
    router = await startRouter(env.natsUrl, env.subjectPrefix, receiver.env());
    backend = await startMockBackend({
      name: 'traced-backend',
      models: [MODEL],
      onRequest: (req) => {
        if (req.url?.startsWith('/v1/')) backendTraceparents.push(String(req.headers['traceparent'] ?? ''));
      },
    });
    const revision = await registerInstance(registry.url, { serviceId: 'traced-backend', serviceName: 'vllm', port: backend.port, models: [MODEL] });
    await waitFor(async () => ((await (await fetch(`${router.url}/health`)).json()) as { table: { revision: number } }).table.revision >= revision, 10_000, 'the router to learn the backend');
  }, 90_000);

  afterAll(async () => {
    await backend?.close();
    await stopApp(router);
    await stopApp(invalidator);
    await stopApp(registry);
    await receiver?.close();
    await env?.dispose();
  });

  it('client → router → backend is one trace: the router\'s server span continues the client\'s, its undici span is the parent the backend receives', async () => {
    const client = clientTraceparent();
    const before = backendTraceparents.length;
    const response = await chat(router, client.header);
    expect(response.status).toBe(200);
    await response.json();

    const server = await waitFor(() => find(receiver.trace(client.traceId), 'llm-router', (s) => s.kind === SPAN_KIND.server), 10_000, 'the router\'s server span');
    expect(server.parentSpanId).toBe(client.spanId);
    const upstream = await waitFor(() => find(receiver.trace(client.traceId), 'llm-router', (s) => s.kind === SPAN_KIND.client && String(s.attributes['url.full'] ?? '').includes('/v1/chat/completions')), 10_000, 'the router\'s upstream span');

    // What reached the backend: exactly one traceparent, the upstream span's, in the client's trace.
    expect(backendTraceparents.slice(before)).toEqual([`00-${client.traceId}-${upstream.spanId}-01`]);
    expect(receiver.otherPaths).toEqual([]);
  });

  it('the router\'s request span carries the GenAI attributes: models, usage tokens, instance, attempts, failover, time to first byte; a stream\'s usage too', async () => {
    const plain = clientTraceparent();
    const answer = (await (await chat(router, plain.header)).json()) as { model: string; usage: { prompt_tokens: number; completion_tokens: number } };
    const streamed = clientTraceparent();
    const stream = await chat(router, streamed.header, { stream: true, stream_options: { include_usage: true } });
    const events = await stream.text();
    const streamUsage = JSON.parse(events.split('\n').filter((l) => l.startsWith('data: {') && l.includes('"usage"')).at(-1)?.slice(6) ?? '{}') as { usage: { completion_tokens: number } };

    const plainSpan = await waitFor(() => find(receiver.trace(plain.traceId), 'llm-router', (s) => s.kind === SPAN_KIND.server), 10_000, 'the plain request\'s span');
    expect(plainSpan.name).toBe('POST /v1/chat/completions');
    expect(plainSpan.attributes).toMatchObject({
      'http.route': '/v1/chat/completions',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': answer.model,
      'gen_ai.usage.input_tokens': answer.usage.prompt_tokens,
      'gen_ai.usage.output_tokens': answer.usage.completion_tokens,
      'switchboard.instance': 'traced-backend',
      'switchboard.attempts': 1,
      'switchboard.failover': false,
      'switchboard.stream': false,
    });
    expect(plainSpan.attributes['switchboard.time_to_first_byte_ms']).toBeGreaterThan(0);
    const streamSpan = await waitFor(() => find(receiver.trace(streamed.traceId), 'llm-router', (s) => s.kind === SPAN_KIND.server), 10_000, 'the stream\'s span');
    expect(streamSpan.attributes).toMatchObject({ 'switchboard.stream': true, 'gen_ai.response.model': answer.model, 'gen_ai.usage.output_tokens': streamUsage.usage.completion_tokens });
  });

  it('a REST status change → outbox publish → cache-invalidator consume → router table apply share one trace', async () => {
    const client = clientTraceparent();
    const res = await fetch(`${registry.url}/api/v2/services/registry/traced-backend/status`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-registry-token': REGISTRY_TOKEN, traceparent: client.header },
      body: JSON.stringify({ status: 'degraded', reason: 'tracing e2e' }),
    });
    expect(res.status).toBe(200);

    const spans = () => receiver.trace(client.traceId);
    const publish = await waitFor(() => find(spans(), 'registry-api', (s) => s.kind === SPAN_KIND.producer && s.name.includes('registry.events.statusChanged')), 10_000, 'the outbox publish span');
    const invalidated = await waitFor(() => find(spans(), 'cache-invalidator', (s) => s.kind === SPAN_KIND.consumer), 10_000, 'the invalidator\'s consumer span');
    const consumed = await waitFor(() => find(spans(), 'llm-router', (s) => s.kind === SPAN_KIND.consumer), 10_000, 'the router\'s consumer span');
    const applied = await waitFor(() => find(spans(), 'llm-router', (s) => s.name === 'routing-table apply'), 10_000, 'the table apply span');
    const request = find(spans(), 'registry-api', (s) => s.kind === SPAN_KIND.server);

    expect(request?.parentSpanId).toBe(client.spanId);
    // Named after the route, not just the method (TraceRouteInterceptor).
    expect(request).toMatchObject({ name: 'PUT /api/v2/services/registry/:serviceId/status', attributes: expect.objectContaining({ 'http.route': '/api/v2/services/registry/:serviceId/status' }) });
    expect(publish.attributes).toMatchObject({ 'messaging.system': 'nats', 'messaging.operation.type': 'send' });
    // Both consumers are children of the one publish; the apply is inside the router's consume.
    expect(invalidated.parentSpanId).toBe(publish.spanId);
    expect(invalidated.attributes).toMatchObject({ 'switchboard.event.kind': 'statusChanged', 'switchboard.service_id': 'traced-backend' });
    expect(consumed.parentSpanId).toBe(publish.spanId);
    expect(applied.parentSpanId).toBe(consumed.spanId);
    expect(applied.attributes).toMatchObject({ 'switchboard.event.kind': 'statusChanged' });
  });

  it('spans still waiting in the batch are flushed by the graceful shutdown (SIGTERM)', async () => {
    // A second router whose batch would wait 10 minutes: only the shutdown's flush can deliver its spans.
    const lazy = await startRouter(env.natsUrl, env.subjectPrefix, receiver.env({ OTEL_BSP_SCHEDULE_DELAY: '600000', OTEL_SERVICE_NAME: 'llm-router-lazy' }));
    const client = clientTraceparent();
    try {
      const revision = ((await (await fetch(`${router.url}/health`)).json()) as { table: { revision: number } }).table.revision;
      await waitFor(async () => ((await (await fetch(`${lazy.url}/health`)).json()) as { table: { revision: number } }).table.revision >= revision, 10_000, 'the second router to catch up');
      const response = await chat(lazy, client.header);
      expect(response.status).toBe(200);
      await response.json();
    } finally {
      await stopApp(lazy);
    }
    expect(lazy.process.exitCode).toBe(0);
    expect(find(receiver.trace(client.traceId), 'llm-router-lazy', (s) => s.kind === SPAN_KIND.server)).toBeDefined();
  });
});
