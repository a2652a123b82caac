import { Module } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@switchboard/config';
import { RoutedInstance, RoutingTable, TableChange } from '@switchboard/routing-table';
import { BalancerService } from '../balancing/balancer.service';
import { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { CompletionsController } from '../proxy/completions.controller';
import { DrainService } from '../proxy/drain.service';
import { OpenAiErrorFilter } from '../proxy/openai-error.exception';
import { ProxyService } from '../proxy/proxy.service';

/** A routable, healthy instance in development serving `model` at `internalUrl`. */
export function routedInstance(serviceId: string, model: string, internalUrl: string, patch: Partial<RoutedInstance> = {}): RoutedInstance {
  return {
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
    ...patch,
  };
}

export interface ProxyApp {
  app: NestFastifyApplication;
  url: string;
  /** Tells the table's `onChange` listeners, as an event (`change`) or a snapshot (none) would. */
  tableChanged(change?: TableChange): void;
  /** Removes the policy file (the test closes `app` itself, as some tests close it on purpose). */
  dispose(): void;
}

/**
 * The router's proxy in-process, as its integration specs need it: a stub table over `instances()`
 * (read on every request, so a test may swap them, then say so with `tableChanged`), `policy` written as the policy file, the real
 * controller, balancer, drain, metrics and error filter on Fastify.
 */
export async function startProxyApp(options: {
  instances: () => RoutedInstance[];
  policy: object;
  env?: Record<string, string>;
  forceCloseConnections?: boolean;
}): Promise<ProxyApp> {
  const dir = mkdtempSync(join(tmpdir(), 'router-proxy-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(options.policy));
  const config = loadConfig(LlmRouterConfig, { ROUTER_POLICY_FILE: policyFile, LOG_LEVEL: 'silent', ...options.env });
  const listeners = new Set<(change?: TableChange) => void>();
  const table = {
    onChange: (listener: (change?: TableChange) => void) => (listeners.add(listener), () => listeners.delete(listener)),
    instancesFor: (environment: string, model: string) => options.instances().filter((i) => i.environment === environment && i.models.includes(model)),
    routableModels: () => [...new Set(options.instances().flatMap((i) => i.models))].sort(),
    get: (id: string) => options.instances().find((i) => i.serviceId === id),
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
  class ProxyTestModule {}

  const app = await NestFactory.create<NestFastifyApplication>(ProxyTestModule, new FastifyAdapter({ forceCloseConnections: options.forceCloseConnections }), { logger: false });
  await app.listen(0, '127.0.0.1');
  return {
    app,
    url: await app.getUrl(),
    tableChanged: (change) => listeners.forEach((listener) => listener(change)),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
