import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { RoutedInstance } from '@switchboard/routing-table';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { ProxyApp, routedInstance, startProxyApp } from '../testing/proxy-app.util';
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
  let proxy: ProxyApp | undefined;

  const routed = (serviceId: string, internalUrl: string) => routedInstance(serviceId, MODEL, internalUrl);
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

    proxy = await startProxyApp({
      instances: () => instances,
      policy: { defaults: { maxAttempts: 1, timeouts: { connectMs: 500, firstTokenMs: 300, totalMs: 300 } } },
    });
    ({ app, url } = proxy);
  });
  afterAll(async () => {
    await app?.close();
    proxy?.dispose();
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

  it('reads no more than the start of a huge error body, and counts the bodies it cut short', async () => {
    // 32 MiB of error page, written as the router reads it: how much went out shows how much it read.
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    let closed!: (finished: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => (closed = resolve));
    const huge = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/html' });
      res.on('close', () => closed(res.writableFinished));
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => huge.listen(0, '127.0.0.1', resolve));
    const metrics = app.get(RouterMetricsService);
    const truncated = async () => (await metrics.errorBodiesTruncated.get()).values.find((v) => v.labels.model === MODEL)?.value ?? 0;
    const before = await truncated();
    try {
      instances = [routed('vllm-verbose-1', `http://127.0.0.1:${(huge.address() as AddressInfo).port}`)];
      const { status, text } = await chat();
      expect(status).toBe(502);
      expect(JSON.parse(text).error.message).toBe('backend error 500 (vllm-verbose-1)');
      // The router hung up before the backend could finish sending.
      expect(await outcome).toBe(false);
      expect(written).toBeLessThan(total / 2); // what socket buffers hold, not the body
      expect((await truncated()) - before).toBe(1);
    } finally {
      huge.closeAllConnections();
      await new Promise((resolve) => huge.close(resolve));
    }
  });
});
