import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { waitFor } from '@switchboard/testing';
import { ProxyApp, routedInstance, startProxyApp } from '../testing/proxy-app.util';

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
  let proxy: ProxyApp | undefined;

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
    const instances = [routedInstance('vllm-stream-1', 'stream-model', streaming.url), routedInstance('vllm-wait-1', 'wait-model', waiting.url)];
    proxy = await startProxyApp({
      instances: () => instances,
      policy: { defaults: { maxAttempts: 1, timeouts: { connectMs: 1000, firstTokenMs: 60_000, totalMs: 60_000 } } },
      env: { SHUTDOWN_GRACE_MS: '1000' },
      forceCloseConnections: true,
    });
    ({ app, url } = proxy);
  });
  afterAll(async () => {
    await streaming?.close();
    await waiting?.close();
    proxy?.dispose();
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
