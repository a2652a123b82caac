import { NestFastifyApplication } from '@nestjs/platform-fastify';
import http from 'node:http';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { RoutedInstance } from '@switchboard/routing-table';
import { ProxyApp, routedInstance, startProxyApp } from '../testing/proxy-app.util';

const MODEL = 'llama-2-7b';
const LIMIT = 4096;

/** A raw POST (the bytes, headers and framing exactly as given): status, content type and body text. */
function post(url: string, path: string, body: Buffer | string, headers: Record<string, string>, chunked = false): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent: false, headers: chunked ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    if (chunked) {
      // Sent in pieces without a length: the limit must hold while reading, not only on the header.
      const bytes = Buffer.from(body);
      for (let i = 0; i < bytes.length; i += 1024) req.write(bytes.subarray(i, i + 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/**
 * The lean /v1 route (JSON POSTs taken before Fastify) answers malformed and oversized bodies as the
 * Fastify route did (Fastify's JSON parser, the app's limit, OpenAI-shaped errors), and leaves the
 * rest of /v1 to Fastify.
 */
describe('CompletionsController: the lean route and the Fastify routes (in-process)', () => {
  let app: NestFastifyApplication;
  let url: string;
  let backend: MockBackend;
  let proxy: ProxyApp | undefined;
  const instances: RoutedInstance[] = [];
  const json = { 'content-type': 'application/json' };

  beforeAll(async () => {
    backend = await startMockBackend({ host: '127.0.0.1', models: [MODEL] });
    instances.push(routedInstance('vllm-1', MODEL, backend.url));
    proxy = await startProxyApp({ instances: () => instances, policy: {}, env: { BODY_LIMIT_BYTES: String(LIMIT) } });
    ({ app, url } = proxy);
  });
  afterAll(async () => {
    await app?.close();
    proxy?.dispose();
    await backend?.close();
  });

  it('routes a JSON chat completion', async () => {
    const res = await post(url, '/v1/chat/completions', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), json);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).object).toBe('chat.completion');
  });

  it.each([
    ['malformed JSON', '{"model":', "Body is not valid JSON but content-type is set to 'application/json'"],
    ['an empty body', '', "Body cannot be empty when content-type is set to 'application/json'"],
    ['a __proto__ key', `{"model":"${MODEL}","messages":[{"role":"user","content":"x"}],"__proto__":{"polluted":true}}`, "Body is not valid JSON but content-type is set to 'application/json'"],
    ['a JSON array', '[1,2]', 'The request body must be a JSON object.'],
  ])('answers 400 in OpenAI shape for %s', async (_what, body, message) => {
    const res = await post(url, '/v1/chat/completions', body, json);
    expect(res.status).toBe(400);
    expect(res.type).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.text)).toEqual({ error: { message, type: 'invalid_request_error', param: null, code: 'invalid_request' } });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it.each([
    ['a declared length', false],
    ['a chunked body', true],
  ])('answers 413 for a body over BODY_LIMIT_BYTES with %s', async (_what, chunked) => {
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(LIMIT) }] });
    const res = await post(url, '/v1/chat/completions', body, json, chunked);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).error).toMatchObject({ code: 'request_too_large', type: 'invalid_request_error' });
  });

  it('leaves a form body, a query string and GET /v1/models to the Fastify routes', async () => {
    const form = await post(url, '/v1/chat/completions', `model=${MODEL}`, { 'content-type': 'application/x-www-form-urlencoded' });
    // Parsed by Fastify's form parser and validated by the proxy: `messages` is missing.
    expect(form.status).toBe(400);
    expect(JSON.parse(form.text).error).toMatchObject({ param: 'messages' });
    const query = await post(url, '/v1/chat/completions?trace=1', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), json);
    expect(query.status).toBe(200);
    const models = await fetch(`${url}/v1/models`);
    expect(models.status).toBe(200);
    expect(((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id)).toEqual([MODEL]);
  });
});
