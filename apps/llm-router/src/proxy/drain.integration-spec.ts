import { Module } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@switchboard/config';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import { waitFor } from '@switchboard/testing';
import { BalancerService } from '../balancing/balancer.service';
import { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { CompletionsController } from './completions.controller';
import { DrainService } from './drain.service';
import { OpenAiErrorFilter } from './openai-error.exception';
import { ProxyService } from './proxy.service';

const SHUTTING_DOWN = { error: { message: 'router shutting down', type: 'service_unavailable', param: null, code: 'router_shutting_down' } };

/**
 * The cut at the end of a drain, in-process (stub table, in-process mock backends): what a stream and a
 * request still waiting for its first byte get when SHUTDOWN_GRACE_MS (1 s, so a 750 ms drain) runs out.
 */
describe('DrainService with ProxyService: requests the drain cuts (in-process)', () => {
  let app: NestFastifyApplication;
  let url: string;
  let streaming: MockBackend;
  let waiting: MockBackend;
  let dir: string;

  const routed = (serviceId: string, model: string, internalUrl: string): RoutedInstance => ({
    serviceId,
    serviceName: 'vllm',
    environment: 'development',
    models: [model],
    internalUrl,
    healthCheckEndpoint: '/health',
    healthCheck: {},
    status: 'healthy',
    adminState: 'enabled',
    routable: true,
    revision: 1,
    load: {},
  });
  const post = (model: string, stream: boolean) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });

  beforeAll(async () => {
    // 300 tokens at 10 a second: 30 s of stream; the other answers nothing for 30 s.
    streaming = await startMockBackend({ host: '127.0.0.1', models: ['stream-model'], tokensPerSecond: 10, completionTokens: 300 });
    waiting = await startMockBackend({ host: '127.0.0.1', models: ['wait-model'], latencyMs: 30_000 });
    const instances = [routed('vllm-stream-1', 'stream-model', streaming.url), routed('vllm-wait-1', 'wait-model', waiting.url)];
    dir = mkdtempSync(join(tmpdir(), 'router-drain-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ defaults: { maxAttempts: 1, timeouts: { connectMs: 1000, firstTokenMs: 60_000, totalMs: 60_000 } } }));
    const config = loadConfig(LlmRouterConfig, { ROUTER_POLICY_FILE: policyFile, LOG_LEVEL: 'silent', SHUTDOWN_GRACE_MS: '1000' });
    const table = {
      instancesFor: (environment: string, model: string) => instances.filter((i) => i.environment === environment && i.models.includes(model)),
      routableModels: () => ['stream-model', 'wait-model'],
      get: (id: string) => instances.find((i) => i.serviceId === id),
    } as unknown as RoutingTable;

    @Module({
      controllers: [CompletionsController],
      providers: [
        { provide: LLM_ROUTER_CONFIG, useValue: config },
        { provide: RoutingTable, useValue: table },
        RoutingPolicyService,
        BalancerService,
        RouterMetricsService,
        DrainService,
        ProxyService,
        { provide: APP_FILTER, useClass: OpenAiErrorFilter },
      ],
    })
    class DrainTestModule {}

    app = await NestFactory.create<NestFastifyApplication>(DrainTestModule, new FastifyAdapter({ forceCloseConnections: true }), { logger: false });
    await app.listen(0, '127.0.0.1');
    url = await app.getUrl();
  });
  afterAll(async () => {
    await streaming?.close();
    await waiting?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends a started stream with an SSE error event, answers a request without its first byte 503, and aborts both upstream', async () => {
    const stream = await post('stream-model', true);
    expect(stream.status).toBe(200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });
    const pending = post('wait-model', false);
    await waitFor(() => waiting.stats().inflight === 1, 5000, 'the waiting backend to hold the request');

    const closed = app.close();

    const refused = await pending;
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual(SHUTTING_DOWN);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = text.split('\n\n').filter(Boolean).map((event) => event.replace(/^data: /, ''));
    expect(events.length).toBeGreaterThan(1);
    expect(events).not.toContain('[DONE]');
    expect(JSON.parse(events.at(-1) as string)).toEqual(SHUTTING_DOWN);
    await closed;
    await waitFor(() => streaming.stats().aborted === 1 && waiting.stats().aborted === 1, 5000, 'both upstream requests to be aborted');
  });
});
