import { Module } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@switchboard/config';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import { BalancerService } from '../balancing/balancer.service';
import { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { CompletionsController } from './completions.controller';
import { OpenAiErrorFilter } from './openai-error.exception';
import { ProxyService } from './proxy.service';
import { closeAgents } from './upstream.util';

const MODEL = 'llama-2-7b';

/**
 * The router's proxy in-process: a stub table (no NATS) and the in-process mock backend, so its
 * answers to API clients are tested in milliseconds.
 */
describe('ProxyService: what API clients are told when backends fail (in-process)', () => {
  let app: NestFastifyApplication;
  let url: string;
  let backend: MockBackend;
  let deadUrl: string;
  let instances: RoutedInstance[] = [];

  const routed = (serviceId: string, internalUrl: string): RoutedInstance => ({
    serviceId,
    serviceName: 'vllm',
    environment: 'development',
    models: [MODEL],
    internalUrl,
    healthCheckEndpoint: '/health',
    healthCheck: {},
    status: 'healthy',
    adminState: 'enabled',
    routable: true,
    revision: 1,
    load: {},
  });
  const chat = async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    backend = await startMockBackend({ host: '127.0.0.1', models: [MODEL] });
    // A port nothing listens on any more: connections are refused.
    const dead = await startMockBackend({ host: '127.0.0.1', models: [MODEL] });
    deadUrl = dead.url;
    await dead.close();

    const dir = mkdtempSync(join(tmpdir(), 'router-policy-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ defaults: { maxAttempts: 1, timeouts: { connectMs: 500, firstTokenMs: 300, totalMs: 300 } } }));
    const config = loadConfig(LlmRouterConfig, { ROUTER_POLICY_FILE: policyFile, LOG_LEVEL: 'silent' });
    const table = {
      instancesFor: (environment: string, model: string) => instances.filter((i) => i.environment === environment && i.models.includes(model)),
      routableModels: () => [MODEL],
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
        ProxyService,
        { provide: APP_FILTER, useClass: OpenAiErrorFilter },
      ],
    })
    class ProxyTestModule {}

    app = await NestFactory.create<NestFastifyApplication>(ProxyTestModule, new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    url = await app.getUrl();
  });
  afterAll(async () => {
    await app?.close();
    await backend?.close();
    await closeAgents();
  });

  it('502 for a refused connection names the instance id and the error code, never its address', async () => {
    instances = [routed('vllm-dead-1', deadUrl)];
    const { status, text } = await chat();
    expect(status).toBe(502);
    const body = JSON.parse(text);
    expect(body.error).toMatchObject({ code: 'upstream_unreachable', type: 'server_error' });
    expect(body.error.message).toContain('vllm-dead-1');
    expect(body.error.message).toContain('ECONNREFUSED');
    expect(text).not.toContain(new URL(deadUrl).host);
    expect(text).not.toContain('127.0.0.1');
  });

  it('504 for a backend that never answers names the instance id, never its address', async () => {
    instances = [routed('vllm-slow-1', backend.url)];
    backend.setFaults({ hang: true });
    try {
      const { status, text } = await chat();
      expect(status).toBe(504);
      const body = JSON.parse(text);
      expect(body.error).toMatchObject({ code: 'upstream_timeout' });
      expect(body.error.message).toContain('vllm-slow-1');
      expect(text).not.toContain(`:${backend.port}`);
      expect(text).not.toContain('127.0.0.1');
    } finally {
      backend.clearFaults();
    }
  });

  it('502 for a backend error passes on its status, not its body', async () => {
    instances = [routed('vllm-broken-1', backend.url)];
    backend.setFaults({ status: 500 });
    try {
      const { status, text } = await chat();
      expect(status).toBe(502);
      expect(JSON.parse(text).error.message).toBe('backend error 500 (vllm-broken-1)');
    } finally {
      backend.clearFaults();
    }
  });
});
