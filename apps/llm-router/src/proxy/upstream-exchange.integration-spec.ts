import { NestFastifyApplication } from '@nestjs/platform-fastify';
import http, { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { RoutedInstance } from '@switchboard/routing-table';
import { waitFor } from '@switchboard/testing';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { ProxyApp, routedInstance, startProxyApp } from '../testing/proxy-app.util';
import { ProxyService } from './proxy.service';

const BODY = JSON.stringify({ model: 'flood-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });

/** A backend of our own: an endless-enough SSE stream written as fast as the router takes it, and its connections counted. */
function floodBackend(totalBytes: number) {
  const chunk = Buffer.from(`data: ${'x'.repeat(64 * 1024 - 8)}\n\n`);
  const state = { written: 0, waitingForDrain: false, finished: false, closedEarly: false, sockets: new Set<Socket>() };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.on('close', () => (state.closedEarly = !res.writableFinished));
    const pump = () => {
      state.waitingForDrain = false;
      while (state.written < totalBytes) {
        state.written += chunk.length;
        if (!res.write(chunk)) {
          state.waitingForDrain = true;
          return void res.once('drain', pump);
        }
      }
      res.end(() => (state.finished = true));
    };
    pump();
  });
  // Idle connections stay until the router closes them (Node's default would close them after 5 s).
  server.keepAliveTimeout = 120_000;
  server.on('connection', (socket) => {
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
  });
  return {
    state,
    listen: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** A streaming request through the router on a connection of its own; the caller decides how fast to read. */
function streamThrough(url: string): Promise<IncomingMessage & { request: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}/v1/chat/completions`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) =>
      resolve(Object.assign(res, { request })),
    );
    request.on('error', reject);
    request.end(BODY);
  });
}

/**
 * The undici dispatch handler's streaming rules, in-process (stub table, backends on loopback): what the
 * e2e suite shows only from outside — backpressure, a client gone mid-stream, and the per-instance pools.
 */
describe('UpstreamExchange: streaming through the router (in-process)', () => {
  let app: NestFastifyApplication;
  let url: string;
  let proxy: ProxyApp | undefined;
  let instances: RoutedInstance[] = [];

  beforeAll(async () => {
    proxy = await startProxyApp({
      instances: () => instances,
      policy: { defaults: { maxAttempts: 1, timeouts: { connectMs: 1000, firstTokenMs: 30_000, totalMs: 60_000 } } },
    });
    ({ app, url } = proxy);
  });
  afterAll(async () => {
    await app?.close();
    proxy?.dispose();
  });

  // That the handler pauses the upstream on a full response buffer is the unit spec's; this shows the
  // pause and resume working end to end: nothing lost, nothing stuck.
  it('holds the backend back while the client reads slowly, then delivers every byte once it reads again', async () => {
    const total = 256 * 1024 * 1024;
    const backend = floodBackend(total);
    instances = [routedInstance('vllm-flood-1', 'flood-model', await backend.listen())];
    try {
      const res = await streamThrough(url);
      expect(res.statusCode).toBe(200);
      res.pause();
      await waitFor(() => backend.state.waitingForDrain || backend.state.finished, 20_000, 'the backend to block or finish');
      expect(backend.state.finished).toBe(false);
      expect(backend.state.written).toBeLessThan(total / 2); // what socket buffers hold, not the stream
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      await new Promise((resolve) => res.on('end', resolve).resume());
      expect(received).toBe(total);
      expect(backend.state.finished).toBe(true);
    } finally {
      await backend.close();
    }
  });

  describe('with the mock backend streaming 300 tokens at 10 a second', () => {
    let streaming: MockBackend;
    beforeAll(async () => {
      streaming = await startMockBackend({ host: '127.0.0.1', models: ['slow-model'], tokensPerSecond: 10, completionTokens: 300 });
    });
    afterAll(async () => {
      await streaming?.close();
    });

    it('aborts the upstream request when the client goes away mid-stream, and counts it', async () => {
      instances = [routedInstance('vllm-slow-1', 'slow-model', streaming.url)];
      const metrics = app.get(RouterMetricsService);
      const aborts = async () => (await metrics.clientAborts.get()).values.find((v) => v.labels.model === 'slow-model')?.value ?? 0;
      const before = await aborts();
      const res = await new Promise<IncomingMessage & { request: http.ClientRequest }>((resolve, reject) => {
        const request = http.request(`${url}/v1/chat/completions`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (r) =>
          resolve(Object.assign(r, { request })),
        );
        request.on('error', reject);
        request.end(JSON.stringify({ model: 'slow-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
      });
      expect(res.statusCode).toBe(200);
      const first = await new Promise<string>((resolve) => res.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      expect(first).toContain('data: ');
      expect(streaming.stats().aborted).toBe(0);
      res.request.destroy();
      await waitFor(() => streaming.stats().aborted === 1, 5000, 'the upstream request to be aborted');
      await waitFor(async () => (await aborts()) - before === 1, 5000, 'the client abort to be counted');
    });
  });

  it('keeps one pool per instance and closes it, with its idle connections, once the instance leaves the table', async () => {
    const backend = floodBackend(1024);
    const id = 'vllm-leaving-1';
    instances = [routedInstance(id, 'flood-model', await backend.listen())];
    const pools = app.get(ProxyService).pools;
    // A snapshot without the earlier tests' instances: their pools go.
    proxy?.tableChanged();
    expect(pools.size).toBe(0);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
        expect(res.status).toBe(200);
        await res.text();
      }
      // Both requests went over the one kept-alive connection of the instance's pool.
      expect(pools.size).toBe(1);
      expect(backend.state.sockets.size).toBe(1);
      instances = [];
      proxy?.tableChanged({ serviceId: id });
      expect(pools.size).toBe(0);
      await waitFor(() => backend.state.sockets.size === 0, 5000, "the pool's connection to be closed");
    } finally {
      await backend.close();
    }
  });
});
