import { performance } from 'node:perf_hooks';
import { fetch, Response } from 'undici';
import { waitFor } from '@switchboard/testing';
import { MockBackend, startMockBackend } from '../index';

interface SseEvent {
  data: string;
  at: number;
}

function chat(backend: MockBackend, body: Record<string, unknown>, init: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${backend.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'alpha beta gamma' }], ...body }),
    signal: init.signal,
  });
}

/** Reads SSE events with their arrival times; `error` is set when the stream broke before its end. */
async function readEvents(res: Response): Promise<{ events: SseEvent[]; error: unknown }> {
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
      const at = performance.now();
      buffer += decoder.decode(bytes, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        events.push({ data: buffer.slice(0, end).replace(/^data: /, ''), at });
        buffer = buffer.slice(end + 2);
      }
    }
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

const parse = (events: SseEvent[]): any[] => events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));

describe('mock LLM backend', () => {
  let backend: MockBackend;

  beforeAll(async () => {
    backend = await startMockBackend({ name: 'mock-a', models: ['mock-model', 'org/other-model'], completionTokens: 5 });
  });
  afterEach(() => backend.clearFaults());
  afterAll(() => backend.close());

  describe('OpenAI endpoints', () => {
    it('answers a non-streaming chat completion in OpenAI shape, echoing the last user message', async () => {
      const res = await chat(backend, { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'alpha beta gamma' }] });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('x-mock-backend')).toBe('mock-a');
      const body: any = await res.json();
      expect(body).toEqual({
        id: expect.stringMatching(/^chatcmpl-/),
        object: 'chat.completion',
        created: expect.any(Number),
        model: 'mock-model',
        system_fingerprint: 'mock-a',
        choices: [{ index: 0, message: { role: 'assistant', content: 'alpha beta gamma alpha beta' }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
      });
    });

    it('stops at max_tokens with finish_reason length', async () => {
      const body: any = await (await chat(backend, { max_tokens: 2 })).json();
      expect(body.choices[0]).toMatchObject({ message: { content: 'alpha beta' }, finish_reason: 'length' });
      expect(body.usage.completion_tokens).toBe(2);
    });

    it('answers a text completion, plain and streamed', async () => {
      const plain: any = await (
        await fetch(`${backend.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-model', prompt: 'one two' }) })
      ).json();
      expect(plain).toMatchObject({ object: 'text_completion', model: 'mock-model', choices: [{ index: 0, text: 'one two one two one', finish_reason: 'stop' }] });
      expect(plain.id).toMatch(/^cmpl-/);

      const streamed = await fetch(`${backend.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-model', prompt: 'one two', stream: true }),
      });
      const { events, error } = await readEvents(streamed);
      expect(error).toBeUndefined();
      expect(events.at(-1)?.data).toBe('[DONE]');
      const chunks = parse(events);
      expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
      expect(chunks.map((c) => c.choices[0].text).join('')).toBe('one two one two one');
      expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
    });

    it('embeds deterministically in 8 dimensions, as floats or base64', async () => {
      const embed = async (body: Record<string, unknown>): Promise<any> =>
        (await fetch(`${backend.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-model', ...body }) })).json();
      const first = await embed({ input: ['hello world', 'other'] });
      expect(first).toMatchObject({ object: 'list', model: 'mock-model', usage: { prompt_tokens: 3, total_tokens: 3 } });
      expect(first.data).toHaveLength(2);
      expect(first.data[0]).toMatchObject({ object: 'embedding', index: 0 });
      expect(first.data[0].embedding).toHaveLength(8);
      expect(first.data[0].embedding).not.toEqual(first.data[1].embedding);
      const again = await embed({ input: 'hello world' });
      expect(again.data[0].embedding).toEqual(first.data[0].embedding);
      const base64 = await embed({ input: 'hello world', encoding_format: 'base64' });
      const floats = Array.from(new Float32Array(new Uint8Array(Buffer.from(base64.data[0].embedding, 'base64')).buffer));
      expect(floats).toEqual(first.data[0].embedding.map((value: number) => expect.closeTo(value, 5)));
    });

    it('lists and retrieves models', async () => {
      const list: any = await (await fetch(`${backend.url}/v1/models`)).json();
      expect(list).toEqual({
        object: 'list',
        data: [
          { id: 'mock-model', object: 'model', created: expect.any(Number), owned_by: 'mock' },
          { id: 'org/other-model', object: 'model', created: expect.any(Number), owned_by: 'mock' },
        ],
      });
      const one: any = await (await fetch(`${backend.url}/v1/models/org/other-model`)).json();
      expect(one).toMatchObject({ id: 'org/other-model', object: 'model' });
    });

    it('answers 404 in OpenAI shape for an unknown model', async () => {
      const res = await chat(backend, { model: 'nope' });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { message: 'The model `nope` does not exist.', type: 'invalid_request_error', param: 'model', code: 'model_not_found' },
      });
    });

    it('answers 400 in OpenAI shape for malformed JSON and missing messages', async () => {
      const malformed = await fetch(`${backend.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as any).error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });

      const noMessages = await fetch(`${backend.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-model' }),
      });
      expect(noMessages.status).toBe(400);
      expect(((await noMessages.json()) as any).error).toMatchObject({ type: 'invalid_request_error', param: 'messages' });
    });

    it('reports health', async () => {
      const res = await fetch(`${backend.url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });
  });

  describe('streaming', () => {
    let paced: MockBackend;
    beforeAll(async () => {
      paced = await startMockBackend({ name: 'paced', tokensPerSecond: 50, completionTokens: 10 });
    });
    afterAll(() => paced.close());

    it('streams chunks incrementally at tokensPerSecond and ends with [DONE]', async () => {
      const res = await chat(paced, { stream: true, stream_options: { include_usage: true } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.headers.get('x-mock-backend')).toBe('paced');
      const { events, error } = await readEvents(res);
      expect(error).toBeUndefined();
      expect(events.at(-1)?.data).toBe('[DONE]');

      const chunks = parse(events);
      expect(chunks[0]).toMatchObject({ object: 'chat.completion.chunk', model: 'mock-model', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
      const tokenEvents = events.filter((e) => e.data !== '[DONE]' && JSON.parse(e.data).choices[0]?.delta?.content);
      expect(tokenEvents).toHaveLength(10);
      const content = tokenEvents.map((e) => JSON.parse(e.data).choices[0].delta.content).join('');
      expect(content).toBe('alpha beta gamma alpha beta gamma alpha beta gamma alpha');
      // 10 tokens at 50/s span 180 ms; chunks written together would arrive together.
      expect(tokenEvents[0].at).toBeLessThan(tokenEvents[9].at - 100);
      for (let i = 1; i < tokenEvents.length; i++) expect(tokenEvents[i].at).toBeGreaterThanOrEqual(tokenEvents[i - 1].at);

      const finish = chunks.find((c) => c.choices[0]?.finish_reason);
      expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
      expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 10, prompt_tokens: 3, total_tokens: 13 } });
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    });

    it('counts a client that disconnects mid-stream as aborted', async () => {
      const before = paced.stats();
      const controller = new AbortController();
      const res = await chat(paced, { stream: true }, { signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      controller.abort();
      await waitFor(() => paced.stats().aborted === before.aborted + 1, 5000, 'aborted to count the disconnect');
      await waitFor(() => paced.stats().inflight === 0, 5000, 'inflight to drop to 0');
    });
  });

  describe('faults', () => {
    it('answers a status fault with an OpenAI error and Retry-After', async () => {
      backend.setFaults({ status: 503, retryAfter: 2 });
      const res = await chat(backend, {});
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(res.headers.get('x-mock-backend')).toBe('mock-a');
      expect(await res.json()).toEqual({ error: { message: expect.stringContaining('503'), type: 'server_error', param: null, code: 'service_unavailable' } });

      backend.setFaults({ status: 429 });
      const limited = await chat(backend, {});
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeNull();
      expect(((await limited.json()) as any).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    });

    it('hangs until the client gives up, and counts that as aborted', async () => {
      backend.setFaults({ hang: true });
      const before = backend.stats().aborted;
      const controller = new AbortController();
      const pending = chat(backend, {}, { signal: controller.signal });
      await waitFor(() => backend.stats().inflight === 1, 5000, 'the request to arrive');
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      await waitFor(() => backend.stats().aborted === before + 1 && backend.stats().inflight === 0, 5000, 'the abort to be counted');
    });

    it('drops the connection without a response', async () => {
      const before = backend.stats().aborted;
      backend.setFaults({ drop: true });
      await expect(chat(backend, {})).rejects.toThrow('fetch failed');
      backend.clearFaults();
      expect((await chat(backend, {})).status).toBe(200);
      expect(backend.stats().aborted).toBe(before);
    });

    it('cuts a stream after N chunks: no [DONE], the body errors', async () => {
      backend.setFaults({ cutAfterChunks: 3 });
      const res = await chat(backend, { stream: true });
      expect(res.status).toBe(200);
      const { events, error } = await readEvents(res);
      expect(error).toBeDefined();
      expect(events).toHaveLength(3);
      expect(events.some((e) => e.data === '[DONE]')).toBe(false);
    });

    it('cuts a non-streaming answer mid-body', async () => {
      backend.setFaults({ cutAfterChunks: 0 });
      const res = await chat(backend, {});
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow();
    });

    it('clears a counted fault by itself after N requests', async () => {
      backend.setFaults({ status: 500, count: 2 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await chat(backend, {})).status);
      expect(statuses).toEqual([500, 500, 200]);
      expect(backend.faults()).toBeUndefined();
    });

    it('fails a deterministic fraction with failRate', async () => {
      backend.setFaults({ failRate: 0.5 });
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await chat(backend, {})).status);
      expect(statuses).toEqual([200, 500, 200, 500, 200, 500]);
      backend.setFaults({ failRate: 0.25, status: 502 });
      const more = [];
      for (let i = 0; i < 4; i++) more.push((await chat(backend, {})).status);
      expect(more).toEqual([200, 200, 200, 502]);
    });

    it('applies latency overrides', async () => {
      backend.setFaults({ latencyMs: 150 });
      const started = performance.now();
      expect((await chat(backend, {})).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('applies faults asked for by one request through headers, and only to that request', async () => {
      const failed = await chat(backend, {}, { headers: { 'x-mock-fault-status': '429', 'x-mock-fault-retry-after': '7' } });
      expect(failed.status).toBe(429);
      expect(failed.headers.get('retry-after')).toBe('7');
      expect((await chat(backend, {})).status).toBe(200);

      await expect(chat(backend, {}, { headers: { 'x-mock-fault-drop': '1' } })).rejects.toThrow('fetch failed');

      const cut = await chat(backend, { stream: true }, { headers: { 'x-mock-fault-cut-after-chunks': '2' } });
      const { events, error } = await readEvents(cut);
      expect(events).toHaveLength(2);
      expect(error).toBeDefined();

      const bad = await chat(backend, {}, { headers: { 'x-mock-fault-status': 'soon' } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as any).error.param).toBe('x-mock-fault-status');
    });

    it('breaks health checks: unhealthy, degraded after a delay, hang', async () => {
      backend.setFaults({ health: 'unhealthy' });
      const unhealthy = await fetch(`${backend.url}/health`);
      expect(unhealthy.status).toBe(503);
      expect(await unhealthy.json()).toEqual({ status: 'unhealthy' });
      expect((await chat(backend, {})).status).toBe(200);

      backend.setFaults({ health: 'degraded', healthDelayMs: 100 });
      const started = performance.now();
      const degraded = await fetch(`${backend.url}/health`);
      expect(performance.now() - started).toBeGreaterThanOrEqual(90);
      expect(degraded.status).toBe(200);
      expect(await degraded.json()).toEqual({ status: 'degraded' });

      backend.clearFaults();
      await expect(fetch(`${backend.url}/health`, { headers: { 'x-mock-fault-health': 'hang' }, signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
        name: 'TimeoutError',
      });
      expect((await fetch(`${backend.url}/health`)).status).toBe(200);
    });

    it('refuses invalid faults', () => {
      expect(() => backend.setFaults({ status: 200 })).toThrow('fault "status" must be an integer in 400..599');
      expect(() => backend.setFaults({ stauts: 500 } as never)).toThrow('unknown fault "stauts"');
      expect(backend.faults()).toBeUndefined();
    });
  });

  describe('admin endpoints', () => {
    it('sets, shows and clears faults, and reports stats without counting itself', async () => {
      const admin = (method: string, path: string, body?: unknown): Promise<Response> =>
        fetch(`${backend.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const before = backend.stats();

      const put = await admin('PUT', '/_mock/faults', { status: 502, count: 1 });
      expect(put.status).toBe(200);
      expect(await put.json()).toEqual({ faults: { status: 502, count: 1 } });
      expect((await chat(backend, {})).status).toBe(502);
      expect(await (await admin('GET', '/_mock/faults')).json()).toEqual({ faults: null });

      await admin('PUT', '/_mock/faults', { status: 500 });
      expect(await (await admin('DELETE', '/_mock/faults')).json()).toEqual({ faults: null });
      expect((await chat(backend, {})).status).toBe(200);

      const invalid = await admin('PUT', '/_mock/faults', { hang: 'yes' });
      expect(invalid.status).toBe(400);
      expect(((await invalid.json()) as any).error.message).toContain('hang');

      const stats: any = await (await admin('GET', '/_mock/stats')).json();
      expect(stats).toMatchObject({ name: 'mock-a', requests: before.requests + 2, inflight: 0 });
      expect(stats.byPath['/v1/chat/completions']).toBe((before.byPath['/v1/chat/completions'] ?? 0) + 2);
      expect(stats.byPath['/_mock/faults']).toBeUndefined();
    });
  });

  describe('lifecycle', () => {
    it('counts requests by path', async () => {
      const fresh = await startMockBackend();
      try {
        expect(fresh.name).toBe(`mock-${fresh.port}`);
        await chat(fresh, {});
        await chat(fresh, {});
        await fetch(`${fresh.url}/v1/models?x=1`);
        await fetch(`${fresh.url}/health`);
        expect(fresh.stats()).toEqual({ requests: 4, inflight: 0, aborted: 0, byPath: { '/v1/chat/completions': 2, '/v1/models': 1, '/health': 1 } });
      } finally {
        await fresh.close();
      }
    });

    it('kill() breaks open streams and refuses the next connection', async () => {
      const victim = await startMockBackend({ tokensPerSecond: 20, completionTokens: 50 });
      const res = await chat(victim, { stream: true });
      const reading = readEvents(res);
      await waitFor(() => victim.stats().inflight === 1, 5000, 'the stream to start');
      await victim.kill();
      const { events, error } = await reading;
      expect(error).toBeDefined();
      expect(events.some((e) => e.data === '[DONE]')).toBe(false);
      await expect(chat(victim, {})).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
      expect(victim.stats().aborted).toBe(0);
    });

    it('close() returns promptly with a hung request open', async () => {
      const closing = await startMockBackend();
      closing.setFaults({ hang: true });
      const pending = chat(closing, {}).catch((error: unknown) => error);
      await waitFor(() => closing.stats().inflight === 1, 5000, 'the request to arrive');
      const started = performance.now();
      await closing.close();
      expect(performance.now() - started).toBeLessThan(2000);
      expect(await pending).toBeInstanceOf(Error);
      await expect(fetch(`${closing.url}/health`)).rejects.toThrow('fetch failed');
    });

    it('delays the answer by latencyMs', async () => {
      const slow = await startMockBackend({ latencyMs: 120 });
      try {
        const started = performance.now();
        expect((await chat(slow, {})).status).toBe(200);
        expect(performance.now() - started).toBeGreaterThanOrEqual(110);
        // Errors raised after the wait still reach the client in OpenAI's shape.
        const unknown = await chat(slow, { model: 'nope' });
        expect(unknown.status).toBe(404);
        expect(((await unknown.json()) as any).error.code).toBe('model_not_found');
      } finally {
        await slow.close();
      }
    });

    it('refuses invalid options', async () => {
      await expect(startMockBackend({ models: [] })).rejects.toThrow('models must be a non-empty list');
      await expect(startMockBackend({ tokensPerSecond: -1 })).rejects.toThrow('tokensPerSecond');
    });
  });
});
